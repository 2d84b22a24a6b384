"""The dev server's own routes, not in template.yaml (on AWS there is no clock to move, the metrics
are CloudWatch's and messages really go out): the same answers from the embedded stack
(loopline/embedded/runtime.py) and from `loopline dev --local` (loopline/running.py)."""

from __future__ import annotations

from typing import Any

from infra.clock import ManualClock
from infra.json_http import BadBody, dumps, is_json_type, parse_body
from infra.ports import Clock
from loopline.doorbell import Doorbell
from loopline.memory.prometheus import CONTENT_TYPE as PROMETHEUS_TYPE
from loopline.memory.prometheus import PrometheusRegistry

DEV_CLOCK = "_dev_clock"
DEV_OUTBOX = "_dev_outbox"
DEV_METRICS = "_dev_metrics"
DEV_FUNCTIONS = (DEV_CLOCK, DEV_OUTBOX, DEV_METRICS)


def dev_routes() -> tuple[Any, ...]:
    from loopline.embedded.provision import Route

    return (Route(method="POST", path="/_dev/clock", function=DEV_CLOCK),
            Route(method="GET", path="/_dev/outbox", function=DEV_OUTBOX),
            Route(method="GET", path="/metrics", function=DEV_METRICS))


def dev_answer(function_id: str, event: dict[str, Any], clock: Clock, doorbell: Doorbell,
               metrics: PrometheusRegistry) -> dict[str, Any]:
    """The answer of one of DEV_FUNCTIONS to a request (an API Gateway proxy event)."""
    if function_id == DEV_CLOCK:
        return _move_clock(event, clock, doorbell)
    if function_id == DEV_METRICS:
        return {"statusCode": 200, "body": metrics.render(),
                "headers": {"Content-Type": PROMETHEUS_TYPE, "X-Content-Type-Options": "nosniff"}}
    from infra.tasks import outbox
    from loopline.embedded import outbox_page

    kind = (event.get("queryStringParameters") or {}).get("type")
    if outbox_page.wants_html(event.get("headers")):  # a browser: the page; anyone else: JSON
        return outbox_page.response(outbox.entries(kind), kind)
    answer = reply(200, {"entries": outbox.entries(kind)})
    answer["headers"]["Vary"] = "Accept"
    return answer


def _move_clock(event: dict[str, Any], clock: Clock, doorbell: Doorbell) -> dict[str, Any]:
    """Move a movable clock forward."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    if not is_json_type(headers.get("content-type")):  # the same rule as the api handler's
        return reply(415, {"error": "send the body as application/json"})
    try:
        seconds = float((parse_body(event.get("body")) or {}).get("seconds", 0))
    except BadBody as error:
        return reply(error.status, {"error": error.message})
    except (ValueError, AttributeError, TypeError, OverflowError):
        return reply(400, {"error": "send {\"seconds\": N}"})
    if not isinstance(clock, ManualClock):
        return reply(409, {"error": "start `loopline dev --movable-clock` to move the clock"})
    if not 0 <= seconds <= 10 * 365 * 86400:
        return reply(400, {"error": "seconds must be between 0 and ten years"})
    now = clock.advance(seconds)
    doorbell.ring()  # timers that fell due
    return reply(200, {"now": now.isoformat()})


def reply(status: int, body: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"},
            "body": dumps(body)}
