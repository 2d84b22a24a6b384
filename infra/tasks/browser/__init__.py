"""The ``browser`` task type: navigate, extract, screenshot, click and type on one page.

Providers: ``chromium`` (chromium.py: headless Chromium driven over the Chrome
DevTools Protocol on a pipe, devtools.py; the binary is ``LOOPLINE_CHROMIUM`` or
``/usr/bin/chromium``) and ``http`` (http_fallback.py, the stand-in: fetches the
page and reads it with html.py and selectors.py, so no script runs; navigate and
extract only). The default is ``chromium`` when its binary is
installed and ``http`` otherwise, in both environments.

Each task is a fresh browser session (a new profile directory): it opens
``config.url``, waits for ``config.wait_for`` (a selector) if given, then acts.

Both providers reach only what the egress policy allows (``egress.py``): the
``http`` stand-in through the shared HTTP client; Chromium through a proxy of its
own (``egress_proxy.py``) that checks every connection the browser makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import common, files
from ..base import TaskFailure
from ..common import INVALID_CONFIG, TaskMeta
from ..http_task import check_url
from .request import ACTIONS, DEFAULT_TIMEOUT, Browser, BrowserRequest


def run_browser(config: dict[str, Any], meta: TaskMeta, browser: Browser, root: Path) -> dict[str, Any]:
    """``root``: the file root, where a screenshot is written."""
    action = (common.text(config, "action") or "navigate").lower()
    if action not in ACTIONS:
        raise TaskFailure(INVALID_CONFIG, f"'config.action' must be one of {', '.join(ACTIONS)}, not {action!r}")
    url = check_url(common.text(config, "url", required=True) or "")
    selector = common.text(config, "selector", required=action in ("extract", "click", "type"))
    shot = None
    if action == "screenshot":
        shot = files.resolve(common.text(config, "path") or f"screenshots/{meta.run_id}-{meta.task_id}.png", "path",
                             root)
    request = BrowserRequest(
        action=action, url=url, selector=selector, value=common.text(config, "value"),
        wait_for=common.text(config, "wait_for"), attribute=common.text(config, "attribute"),
        timeout=common.timeout(config, meta, DEFAULT_TIMEOUT), screenshot=shot,
        full_page=common.flag(config, "full_page", False),
    )
    return browser.run(request, meta)
