"""The headless Chromium fixtures of the report tests, shared with the diff page's tests."""

from __future__ import annotations

from tests.analyze.renderers.conftest import artifacts, browser, open_report

__all__ = ["artifacts", "browser", "open_report"]
