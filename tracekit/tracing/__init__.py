"""Tracing set-up: the provider, the Flask hooks, the span processor and the zero-code hook.

The public entry points are re-exported from the top-level package as ``tracekit.instrument(app)`` and
``tracekit.configure()``. This sub-package is called ``tracing`` rather than ``instrument`` so that
importing it never shadows the ``tracekit.instrument`` function (Python binds a sub-package as an
attribute of its parent when it is imported).
"""
