#!/usr/bin/env bash
# `make image`: build tracekit-demo:0.1.0 from demo_app/Dockerfile with podman (or docker where that is
# what the machine has).
#
#   ENGINE=podman|docker   the engine (default: podman when installed)
#   BASE=IMAGE             the Dockerfile's base (default: the local Debian stand-in from base.sh when
#                          debootstrap is installed, else python:3.11-slim from the registry)
#   IMAGE=NAME:TAG         the tag to build (default tracekit-demo:0.1.0)
#   EXTRAS="dask"          optional dependency groups to install (deploy/dask runs
#                          IMAGE=tracekit-analyze:0.1.0 EXTRAS=dask)
set -euo pipefail
cd "$(dirname "$0")/../.."

ENGINE=${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
IMAGE=${IMAGE:-tracekit-demo:0.1.0}
if [ "$ENGINE" = podman ]; then
  # runc, cgroupfs and rlimits below the hard limits (see the file); the machine's config is untouched.
  export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/demo_app/podman/containers.conf}
fi
if [ -z "${BASE:-}" ]; then
  if command -v debootstrap >/dev/null 2>&1; then
    BASE=$(demo_app/image/base.sh "$ENGINE")
  else
    BASE=python:3.11-slim
  fi
fi

args=(--build-arg "BASE=$BASE" --build-arg "EXTRAS=${EXTRAS:-}" -f demo_app/Dockerfile -t "$IMAGE")
# The CA bundle this host's TLS clients trust, lent to the build as a secret (see the Dockerfile).
CA=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
if [ -s "$CA" ]; then
  args+=(--secret "id=ca-bundle,src=$CA")
fi
echo "building $IMAGE with $ENGINE from $BASE" >&2
previous=$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [ "$ENGINE" = docker ]; then
  DOCKER_BUILDKIT=1 docker build "${args[@]}" .
else
  podman build "${args[@]}" .
fi
# The image this build replaced (untagged now) goes: its venv layer is the large part, and nothing
# else uses it. The build cache (the dependency layer from uv.lock) stays for the next build.
current=$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  "$ENGINE" image rm "$previous" >/dev/null 2>&1 || true
fi
