"""Id normalisation: every spelling of the same bytes gives the same lowercase hex id."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracekit.analyze.readers.common import BadId, normalize_id


@given(st.binary(min_size=16, max_size=16))
def test_trace_id_spellings_agree(raw: bytes) -> None:
    expected = raw.hex()
    assert normalize_id(raw.hex().upper(), 16, base64_ok=True) == expected
    assert normalize_id(base64.b64encode(raw).decode(), 16, base64_ok=True) == expected
    assert normalize_id(base64.urlsafe_b64encode(raw).decode().rstrip("="), 16, base64_ok=True) == expected


@given(st.binary(min_size=8, max_size=8))
def test_span_id_spellings_agree(raw: bytes) -> None:
    expected = raw.hex()
    assert normalize_id(raw.hex(), 8, base64_ok=False) == expected
    assert normalize_id(base64.b64encode(raw).decode(), 8, base64_ok=True) == expected
    assert normalize_id(int.from_bytes(raw, "big"), 8, base64_ok=False) == expected  # ids as JSON numbers


def test_short_ids_are_left_padded_and_bad_ones_refused() -> None:
    assert normalize_id("abc", 8, base64_ok=False) == "0000000000000abc"
    assert normalize_id("18231c31672495c6", 16, base64_ok=False) == "0000000000000000" + "18231c31672495c6"
    assert (
        normalize_id("0" * 16 + "00f067aa0ba902b7", 8, base64_ok=False) == "00f067aa0ba902b7"
    )  # 128-bit, high 0
    for bad in ("", None, "f" * 17, "0f" * 9):
        with pytest.raises(BadId):
            normalize_id(bad, 8, base64_ok=True)
    with pytest.raises(BadId, match="not hex"):
        normalize_id("span-1", 8, base64_ok=False)
    hashed = normalize_id("span-1", 8, base64_ok=False, free_text_ok=True)
    assert hashed == normalize_id("span-1", 8, base64_ok=False, free_text_ok=True) and len(hashed) == 16
