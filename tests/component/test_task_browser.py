"""The browser task type on headless Chromium (skipped where /usr/bin/chromium is not installed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.tasks.browser.devtools import chromium_path
from tests.unit.test_task_settings import failure, run_type, server, task_env, task_types  # noqa: F401

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed")

PAGE = """<!doctype html><html><head><title>Shop</title></head><body>
<h1 id="top">Welcome</h1>
<ul><li class="item">One</li><li class="item">Two</li></ul>
<div id="later"></div>
<input id="q" value=""><button id="go" onclick="document.getElementById('out').textContent =
  'searched ' + document.getElementById('q').value">Go</button><p id="out"></p>
<a id="next" href="/next">next</a>
<script>
  setTimeout(() => { document.getElementById('later').innerHTML = '<span class="late">Loaded by script</span>'; }, 200);
</script>
</body></html>"""


@pytest.fixture
def site(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "browser=chromium")
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", f"127.0.0.1:{server.port}")  # loopback is denied by default
    server.text("GET", "/shop", PAGE, content_type="text/html")
    server.text("GET", "/next", "<title>Next page</title><p>second</p>", content_type="text/html")
    # Loaded, then its page thread busy for good: a question to the page is never answered.
    server.text("GET", "/busy", "<title>Busy</title><script>onload = () => setTimeout(() => { for (;;) {} }, 50)"
                "</script>", content_type="text/html")
    return server


def test_chromium_is_the_default_when_installed(task_env):  # noqa: F811
    assert task_types().provider_name("browser") == "chromium"


def test_navigate(site):
    url = site.url + "/shop"
    assert run_type("browser", {"action": "navigate", "url": url}) == {"url": url, "status": 200, "title": "Shop"}


def test_extract_sees_what_scripts_render_after_wait_for(site):
    result = run_type("browser", {"action": "extract", "url": site.url + "/shop", "selector": "li.item"})
    assert result["texts"] == ["One", "Two"] and result["count"] == 2
    result = run_type("browser", {"action": "extract", "url": site.url + "/shop", "selector": "#later .late",
                                  "wait_for": ".late"})
    assert result["text"] == "Loaded by script"


def test_screenshot_is_written_under_the_file_root(site):
    result = run_type("browser", {"action": "screenshot", "url": site.url + "/shop", "path": "shots/shop.png"})
    assert result["path"] == "shots/shop.png" and result["bytes"] > 100
    data = (Path(os.environ["LOOPLINE_FILE_ROOT"]) / "shots/shop.png").read_bytes()
    assert data.startswith(b"\x89PNG")
    assert failure("browser", {"action": "screenshot", "url": site.url + "/shop",
                               "path": "../escape.png"}).error_type == "FileAccessDenied"


def test_type_and_click(site):
    result = run_type("browser", {"action": "type", "url": site.url + "/shop", "selector": "#q", "value": "shoes"})
    assert result["value"] == "shoes" and result["selector"] == "#q"
    result = run_type("browser", {"action": "click", "url": site.url + "/shop", "selector": "#next"})
    assert result["url"] == site.url + "/next" and result["title"] == "Next page"


def test_missing_elements_and_navigation_errors(site):
    error = failure("browser", {"action": "click", "url": site.url + "/shop", "selector": "#nope"})
    assert error.error_type == "BrowserElementNotFound"
    error = failure("browser", {"action": "navigate", "url": site.url + "/shop", "wait_for": "#never",
                                "timeout": "4s"})
    assert error.error_type == "BrowserElementNotFound"
    # The deadline coming while the page is being asked whether the element is there (a busy page, or a
    # busy machine) is still the element not found in time, not a timeout of the browser.
    error = failure("browser", {"action": "navigate", "url": site.url + "/busy", "wait_for": "#never",
                                "timeout": "3s"})
    assert error.error_type == "BrowserElementNotFound", error.message
    url = site.url
    site.close()
    assert failure("browser", {"url": url + "/shop"}).error_type == "BrowserNavigationError"
