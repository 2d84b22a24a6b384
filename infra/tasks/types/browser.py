"""The ``browser`` task type: ``chromium`` where its binary is installed, else the ``http`` stand-in
(in both environments); infra/tasks/browser/."""

from __future__ import annotations

from typing import Any

from .. import files
from ..browser import run_browser
from ..browser.chromium import ChromiumBrowser
from ..browser.devtools import chromium_path
from ..browser.http_fallback import HttpBrowser
from ..runtime import Provider, TaskCall, TaskRuntime
from ..settings import TaskSettings


def _default(settings: TaskSettings) -> str:
    return "chromium" if chromium_path(settings.chromium) else "http"


def run(call: TaskCall) -> dict[str, Any]:
    return run_browser(call.config, call.meta, call.provider(), files.root(call.settings.file_root))


RUNTIME = TaskRuntime(run=run, default=_default, providers=(
    Provider("chromium", lambda settings: ChromiumBrowser(settings.chromium, settings.egress(),
                                                          files.root(settings.file_root))),
    Provider("http", lambda settings: HttpBrowser(settings.egress())),
))
