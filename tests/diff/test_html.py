"""The diff page's HTML: self-contained, CSP-locked, hostile strings kept as data."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.diff.pages import HOSTILE_REASON, HOSTILE_ROUTE, regression
from tracekit.diff.html import render_html

_DATA = re.compile(r'<script type="application/json" id="tracekit-diff-data">(.*?)</script>', re.S)


def embedded(html: str) -> dict[str, Any]:
    match = _DATA.search(html)
    assert match is not None
    return json.loads(match.group(1))


def test_page_is_self_contained() -> None:
    html = render_html(regression())
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc=", html, re.I)
    assert "default-src 'none'" in html
    # The one URL outside the data is the SVG namespace, an identifier the page never fetches.
    assert re.findall(r"https?://[^\s\"']+", _DATA.sub("", html)) == ["http://www.w3.org/2000/svg"]


def test_hostile_route_and_reason_stay_data() -> None:
    result = regression()
    html = render_html(result)
    assert html.count("</script>") == 2  # the page's own two script elements
    assert HOSTILE_ROUTE not in html and HOSTILE_REASON not in html
    data = embedded(html)
    assert HOSTILE_REASON in data["new_failure_reasons"]
    assert HOSTILE_ROUTE in [e["route"] for e in data["routes"]]


def test_embedded_data_is_the_diff() -> None:
    result = regression()
    data = embedded(render_html(result))
    data.pop("meta")
    assert data == json.loads(json.dumps(result))


def test_title_is_escaped() -> None:
    html = render_html(regression(), title="<b>deploy</b> & co")
    assert "<title>&lt;b&gt;deploy&lt;/b&gt; &amp; co</title>" in html
