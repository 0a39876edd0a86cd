"""Fixtures for the report tests: the known shop data analysed for real (Chromium: tests/browser.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.analyze.renderers.shopdata import OTLP_FILE


@pytest.fixture(scope="session")
def shop_report() -> dict[str, Any]:
    """The analyzer's real output for tests/analyze/renderers/data/shop.otlp.json, spans included."""
    from tracekit.analyze.api import analyze_paths

    return analyze_paths([OTLP_FILE], include_spans=True)
