"""The embedded OTLP trace receiver, HTTP and gRPC (``tracekit collect``); see :mod:`.server`."""

from __future__ import annotations

from tracekit.receiver.limits import Limits as Limits
from tracekit.receiver.server import Receiver as Receiver

__all__ = ["Limits", "Receiver"]
