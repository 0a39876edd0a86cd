"""Every real export in ../shared/real-traces loads with the trace and span counts its MANIFEST lists.

The files are not copied into the project (their licences and size); the test reads them in place
and is skipped, saying why, where the shared directory is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracekit.analyze.readers import read_traces

REAL = Path(__file__).resolve().parents[3].parent / "shared" / "real-traces"
_ROW = re.compile(r"^\| `([^`]+)` \| [^|]+ \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|")


def manifest() -> dict[str, tuple[int, int, int, int]]:
    """file -> (traces, spans, services, errors) from the MANIFEST's summary table."""
    rows = {}
    for text_line in (REAL / "MANIFEST.md").read_text().splitlines():
        m = _ROW.match(text_line)
        if m:
            rows[m.group(1)] = tuple(int(g) for g in m.groups()[1:])
    return rows


needs_real = pytest.mark.skipif(
    not (REAL / "MANIFEST.md").exists(), reason=f"{REAL} is absent (shared/ not beside)"
)
FILES = sorted(str(p.relative_to(REAL)) for p in REAL.glob("*/*") if p.is_file()) if REAL.exists() else []


@needs_real
def test_manifest_lists_every_file() -> None:
    assert sorted(manifest()) == FILES
    assert len(FILES) >= 20


@needs_real
@pytest.mark.parametrize("name", FILES)
def test_real_file_loads_with_manifest_counts(name: str) -> None:
    traces_expected, spans_expected, services_expected, errors_expected = manifest()[name]
    warnings: list[str] = []
    traces = list(read_traces(REAL / name, on_warning=warnings.append))
    assert warnings == []
    assert len(traces) == traces_expected
    spans = [s for t in traces for s in t.spans]
    # Zipkin halves without a timestamp are merged into their partner (docs: Decisions); count them back.
    merged = sum(
        int(m.group(1))
        for t in traces
        for w in t.warnings
        if (m := re.match(r"(\d+) span part\(s\) .* merged", w))
    )
    assert len(spans) + merged == spans_expected
    assert len({s.service for s in spans}) == services_expected
    assert sum(s.status == 2 for s in spans) == errors_expected
    for t in traces:
        assert len(t.trace_id) == 32
        assert sum(s.parent_id is None for s in t.spans) <= 1
        assert all(len(s.span_id) == 16 and s.end_ns >= s.start_ns > 0 for s in t.spans)
