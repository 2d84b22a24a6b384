"""A small JSON client for the loopline API (the dev server or a deployment)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class ApiUnreachable(Exception):
    pass


def api_call(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, {"error": error.reason}
    except (urllib.error.URLError, OSError) as error:
        raise ApiUnreachable(f"no loopline API answers at {url} ({getattr(error, 'reason', error)}); start one "
                             "with `loopline dev`, or point --url at a running one") from error
