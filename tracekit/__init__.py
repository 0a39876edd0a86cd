"""tracekit: see what happens to a request inside a Kubernetes cluster, and where its time went.

The public surface is small on purpose:

- :func:`instrument` drops OpenTelemetry tracing with pod and routing context into a Flask app.
- :func:`configure` does the same set-up for a process that is not a Flask app.

Both are imported lazily so that ``tracekit analyze`` (which needs no OpenTelemetry SDK) starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["configure", "instrument"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from tracekit.tracing.provider import configure, instrument


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tracekit.tracing import provider

        return getattr(provider, name)
    raise AttributeError(f"module 'tracekit' has no attribute {name!r}")
