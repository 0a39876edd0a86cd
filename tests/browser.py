"""Headless Chromium for the tests of the HTML pages (the analyzer's report, the diff page).

The browser is Debian's ``chromium`` driven by Playwright (never a downloaded browser). Each page is
opened with every request that is not the page file itself routed to a recorder that aborts it,
so a page that tries to fetch anything fails its test instead of quietly loading it.

One home for the fixtures, loaded by the root conftest: Playwright's sync API allows one running
instance per thread, so two session fixtures of their own would break whichever starts second.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TRACEKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class OpenedPage:
    """A report page loaded in Chromium, with what it tried to do on the side."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def open_report(browser: Any, tmp_path: Path) -> Iterator[Callable[..., OpenedPage]]:
    """Write HTML to a file, open it offline, wait until the page says it is drawn."""
    contexts: list[Any] = []

    def _open(html: str, name: str = "report.html", width: int = 1400, height: int = 1000) -> OpenedPage:
        path = tmp_path / name
        path.write_text(html, encoding="utf-8")
        context = browser.new_context(viewport={"width": width, "height": height}, offline=True)
        contexts.append(context)
        page = context.new_page()
        opened = OpenedPage(page)

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith("file://") and url.split("#")[0] == path.as_uri():
                r.continue_()
            else:
                opened.external_requests.append(url)
                r.abort()

        context.route("**/*", route)
        page.on("console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: opened.console_errors.append(f"pageerror: {e}"))
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='true']", state="attached", timeout=15_000)
        return opened

    yield _open
    for c in contexts:
        c.close()
