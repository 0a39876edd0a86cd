"""Jaeger as a source: fetch traces over Jaeger's query API v3 (``/api/v3/traces``).

The v3 API answers with OTLP JSON wrapped in a grpc-gateway frame, ``{"result": {"resourceSpans":
[...]}}``; a server that streams sends several such frames, one after another (newline separated
or simply concatenated), which are all read. Errors come as ``{"error": {"httpCode": 404, "message":
"No traces found"}}`` with the matching HTTP status. The older ``/api/traces`` search (Jaeger JSON)
was removed upstream and is not used.

Query parameters are sent under their snake_case names (``query.service_name``,
``query.start_time_min``, ``query.search_depth``), which every Jaeger v2 release accepts (newer
releases prefer camelCase and keep these as aliases); ``query.num_traces`` is sent alongside for
releases before the rename.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import msgspec
import requests

from tracekit.analyze.model import Trace
from tracekit.analyze.readers.assemble import TraceAssembler
from tracekit.analyze.readers.common import WarningCallback, WarningReporter, clip, split_frames
from tracekit.analyze.readers.otlp import OtlpConverter, decode, resource_spans_of, typed_error
from tracekit.errors import TraceFormatError

#: (connect, read) timeouts in seconds for calls to Jaeger.
TIMEOUT = (5.0, 120.0)
#: Largest answer read from Jaeger. It is held whole while its frames are decoded, so an answer
#: without end (a proxy, a misconfigured URL) must stop somewhere: 512 MiB is about 1.5M spans.
MAX_ANSWER_BYTES = 512 * 1024 * 1024

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_lookback(text: str) -> timedelta:
    """``"1h"``, ``"30m"``, ``"2d"``, ``"1h30m"`` -> timedelta (the units Jaeger's UI offers)."""
    s = text.strip().lower()
    pos, seconds = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s) or seconds <= 0:
        raise TraceFormatError(f"invalid lookback {text!r}: use a duration such as 30m, 1h, 2d")
    return timedelta(seconds=seconds)


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read_answer(resp: requests.Response, max_bytes: int, shown: str) -> bytes:
    """The answer's body, refused past ``max_bytes`` (read in chunks: never more than that held)."""
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in resp.iter_content(1 << 20):
            total += len(chunk)
            if total > max_bytes:
                size = f"{max_bytes / 2**20:,.0f} MiB" if max_bytes >= 2**20 else f"{max_bytes:,} bytes"
                raise TraceFormatError(
                    f"answer larger than {size}; ask for fewer traces (--limit, --lookback)", path=shown
                )
            chunks.append(chunk)
    except requests.exceptions.RequestException as e:
        raise TraceFormatError(f"answer cut off: {clip(str(e), 160)}", path=shown) from None
    finally:
        resp.close()
    return b"".join(chunks)


def _error_message(body: bytes, resp: requests.Response) -> str:
    try:
        doc = msgspec.json.decode(body)
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return clip(err["message"], 200)
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    return clip(body.decode("utf-8", "replace") or resp.reason or "", 200)


def _refused(e: BaseException) -> bool:
    """Whether a ``ConnectionRefusedError`` lies under ``e``: requests wraps urllib3's errors, which
    carry the socket's error as an argument or a ``reason``. Decided by type, not by message text."""
    seen: set[int] = set()
    stack: list[object] = [e]
    while stack:
        x = stack.pop()
        if not isinstance(x, BaseException) or id(x) in seen:
            continue
        if isinstance(x, ConnectionRefusedError):
            return True
        seen.add(id(x))
        stack += [*x.args, getattr(x, "reason", None), x.__cause__, x.__context__]
    return False


def _get(url: str, params: dict[str, Any] | None) -> requests.Response:
    try:
        return requests.get(
            url, params=params, timeout=TIMEOUT, headers={"Accept": "application/json"}, stream=True
        )
    except requests.exceptions.ConnectionError as e:
        reason = "connection refused" if _refused(e) else clip(str(e.__context__ or e), 120)
        raise TraceFormatError(f"cannot reach Jaeger: {reason}", path=url) from None
    except requests.exceptions.Timeout:
        raise TraceFormatError("Jaeger did not answer in time", path=url) from None
    except requests.exceptions.RequestException as e:
        raise TraceFormatError(f"request failed: {clip(str(e), 160)}", path=url) from None


def fetch_traces(
    url: str,
    *,
    service: str | None = None,
    trace_id: str | None = None,
    lookback: str = "1h",
    limit: int = 20,
    on_warning: WarningCallback | None = None,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> Iterator[Trace]:
    """Yield traces from the Jaeger query service at ``url`` (e.g. ``http://localhost:16686``).

    Either ``trace_id`` (one trace) or ``service`` (the most recent traces of that service that
    started within ``lookback``, at most ``limit``) must be given.

    :raises TraceFormatError: Jaeger unreachable, an HTTP error, nothing found, or an unreadable
        answer; the one-line message names the URL.
    """
    base = url.rstrip("/")
    if trace_id:
        tid = trace_id.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{1,32}", tid):
            raise TraceFormatError(f"invalid trace id {trace_id!r}: expected up to 32 hex characters")
        endpoint = f"{base}/api/v3/traces/{quote(tid.rjust(32, '0'))}"
        params: dict[str, Any] | None = None
        what = f"trace {tid}"
    elif service:
        if limit < 1:
            raise TraceFormatError(f"invalid limit {limit}: must be at least 1")
        now = datetime.now(UTC)
        endpoint = f"{base}/api/v3/traces"
        params = {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(now - parse_lookback(lookback)),
            "query.start_time_max": _rfc3339(now),
            "query.search_depth": limit,
            "query.num_traces": limit,
        }
        what = f"traces of service {service!r} in the last {lookback}"
    else:
        raise TraceFormatError("give a service name or a trace id to fetch from Jaeger", path=base)

    resp = _get(endpoint, params)
    shown = resp.url if resp.url else endpoint
    body = _read_answer(resp, max_bytes, shown)
    if resp.status_code == 404:
        raise TraceFormatError(f"no {what} found ({_error_message(body, resp)})", path=shown)
    if resp.status_code >= 400:
        raise TraceFormatError(f"HTTP {resp.status_code}: {_error_message(body, resp)}", path=shown)

    source = f"jaeger:{base}"
    report = WarningReporter(source, on_warning)
    asm = TraceAssembler(source, on_empty=report.warn)
    conv = OtlpConverter(asm, report)
    for frames, frame in enumerate(split_frames(body), 1):
        try:
            env = decode(frame)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as e:
            raise TraceFormatError(
                f"unreadable answer (frame {frames}): {clip(str(e), 160)}", path=shown
            ) from None
        if env.error is not None and env.result is None:
            message = env.error.get("message", env.error) if isinstance(env.error, dict) else env.error
            raise TraceFormatError(f"Jaeger error: {clip(str(message), 200)}", path=shown)
        if env.error is None and env.result is not None and resource_spans_of(env) is None:
            # protojson omits an empty list: an empty TracesData frame is ``{"result": {}}``.
            continue
        try:
            conv.add_envelope(env, frames)
        except msgspec.ValidationError as e:  # an attribute list (decoded late, see otlp.py)
            e = typed_error(frame) or e
            raise TraceFormatError(
                f"unreadable answer (frame {frames}): {clip(str(e), 160)}", path=shown
            ) from None
        except ValueError as e:
            raise TraceFormatError(f"unexpected answer: {e}", path=shown) from None
    report.finish()
    if conv.spans_ok == 0:
        raise TraceFormatError(f"no {what} found (empty answer)", path=shown)
    for n, trace in enumerate(asm.finish()):
        if n >= limit and not trace_id:
            break
        yield trace
