"""``tracekit demo --runtime podman``: the cluster kit's Deployment run by podman, as a cluster would.

:mod:`.manifests` turns the rendered YAML into the Pods podman plays (only its gaps changed),
:mod:`.engine` is the podman command line, :mod:`.runtime` the pods' life cycle for the launcher.
"""
