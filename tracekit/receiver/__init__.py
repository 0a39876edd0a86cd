"""The embedded OTLP/HTTP trace receiver (``tracekit collect``); see :mod:`tracekit.receiver.server`."""

from __future__ import annotations

from tracekit.receiver.server import Limits as Limits
from tracekit.receiver.server import Receiver as Receiver

__all__ = ["Limits", "Receiver"]
