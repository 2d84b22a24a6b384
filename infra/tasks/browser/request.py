"""What every browser provider is asked (:class:`BrowserRequest`), and the errors they fail with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..common import TaskMeta

DEFAULT_TIMEOUT = 30.0
ACTIONS = ("navigate", "extract", "screenshot", "click", "type")
UNAVAILABLE = "BrowserUnavailable"
NOT_FOUND = "BrowserElementNotFound"
NAVIGATION_ERROR = "BrowserNavigationError"
BROWSER_ERROR = "BrowserError"


@dataclass(frozen=True)
class BrowserRequest:
    action: str
    url: str
    selector: str | None = None
    value: str | None = None
    wait_for: str | None = None
    attribute: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    screenshot: Path | None = None  # absolute, inside the file root
    full_page: bool = False


class Browser(Protocol):
    def run(self, request: BrowserRequest, meta: TaskMeta) -> dict[str, Any]: ...


def extracted(request: BrowserRequest, values: list[Any]) -> dict[str, Any]:
    """An extract action's result, the same from every provider."""
    return {"selector": request.selector, "count": len(values), "text": values[0] if values else None,
            "texts": values}
