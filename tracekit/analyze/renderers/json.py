"""JSON renderer: the DESIGN.md contract, exactly (plus the documented extra fields).

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


def stream_json(
    out: IO[bytes], traces: Iterable[dict[str, Any]], summary: Callable[[], dict[str, Any]]
) -> int:
    """Write ``{"traces": [...], "summary": ...}`` trace by trace; return the number of traces written."""
    encode_into = _encoder.encode_into
    write = out.write
    write(b'{"traces":[')
    count = 0
    # One reused buffer, each trace encoded straight onto its end, written out in ~1 MB chunks:
    # no bytes object per trace, few write calls.
    buf = bytearray()
    for trace in traces:
        if count:
            buf += b",\n"
        encode_into(trace, buf, -1)
        count += 1
        if len(buf) > 1 << 20:
            write(buf)
            buf.clear()
    write(buf)
    write(b'],\n"summary":')
    write(_encoder.encode(summary()))
    write(b"}\n")
    return count


class JSONRenderer(Renderer):
    name = "json"
    output_file_extension = "json"

    def render(self, data: Any) -> str:
        return render_json(data, indent=2)
