"""JSON renderer: the JSON contract of docs/design.md, exactly (plus the documented extra fields).

:func:`stream_json` writes the report while the traces are still being analysed, one trace at a
time, so a million spans never sit in memory as report dicts; the summary, known only at the end,
follows the traces (``{"traces": [...], "summary": {...}}``: JSON objects are unordered, readers
look keys up by name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, Any

import msgspec

from tracekit.analyze.renderers.base import Renderer

_encoder = msgspec.json.Encoder()


def render_json(report: dict[str, Any], *, indent: int = 0) -> str:
    """The whole report as one JSON document."""
    data = _encoder.encode(report)
    if indent:
        data = msgspec.json.format(data, indent=indent)
    return data.decode("utf-8") + "\n"


#: The streamed document's framing (``stream_json``; ``parallel.py`` writes the same bytes).
STREAM_HEAD = b'{"traces":['
STREAM_SEPARATOR = b",\n"


def encode_trace_into(report: dict[str, Any], buf: bytearray) -> None:
    """Append one trace report's JSON to ``buf``: the one encoding of a trace in a streamed report."""
    _encoder.encode_into(report, buf, -1)


def stream_tail(summary: dict[str, Any]) -> bytes:
    """What follows the last trace: the summary, and the end of the document."""
    return b'],\n"summary":' + _encoder.encode(summary) + b"}\n"


def stream_json(
    out: IO[bytes], traces: Iterable[dict[str, Any]], summary: Callable[[], dict[str, Any]]
) -> int:
    """Write ``{"traces": [...], "summary": ...}`` trace by trace; return the number of traces written."""
    encode_into = _encoder.encode_into
    write = out.write
    write(STREAM_HEAD)
    count = 0
    # One reused buffer, each trace encoded straight onto its end, written out in ~1 MB chunks:
    # no bytes object per trace, few write calls.
    buf = bytearray()
    for trace in traces:
        if count:
            buf += STREAM_SEPARATOR
        encode_into(trace, buf, -1)
        count += 1
        if len(buf) > 1 << 20:
            write(buf)
            buf.clear()
    write(buf)
    write(stream_tail(summary()))
    return count


class JSONRenderer(Renderer):
    name = "json"
    output_file_extension = "json"

    def render(self, data: Any) -> str:
        return render_json(data, indent=2)
