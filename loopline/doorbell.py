"""What wakes the local pumps, so an idle one sleeps instead of polling.

On AWS nothing of ours polls: SQS hands a batch to the worker when a message arrives, and the
Scheduler fires a schedule when it is due. On one machine a pump does both, and one that looked
every few milliseconds kept a core busy while nothing happened (issue #11: 12 % of a core for an
idle `loopline dev`). A pump that found nothing sleeps on a ``Doorbell`` instead, which rings when

- a message is sent or a schedule made (``attach`` registers botocore handlers on a client:
  any SQS send, any Scheduler create or update, and a visibility change);
- a request has been answered (the gateway rings after each one: it may have changed a run);
- a time the pump was told of comes (``ring_in``: a delayed message becomes visible, a message
  left in flight becomes visible again, a schedule falls due, a caller wants to look again);

and, as a net for what nobody announced (another process sending to a shared emulator, a test
moving a movable clock by hand), after ``idle_limit`` seconds at the latest.

Use: ``arm()`` before looking for work, then ``sleep()`` if there was none. A ring between the two
ends the sleep at once, so nothing announced is missed.
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import Any

# Calls after which there may be work for a pump. A DeleteMessage frees nothing; a
# ChangeMessageVisibility may make a message visible at once (a lease given back).
_WAKING = {
    "sqs": {"SendMessage", "SendMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"},
    "scheduler": {"CreateSchedule", "UpdateSchedule"},
}
# Calls after which a table's stream has records for a stream poller (loopline/embedded/streams.py):
# the pump looks a moment later, as Lambda reads a shard a few times a second, rather than on every
# write (a transition writes several items; one look after them reads them all).
_WRITES = {"dynamodb": {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}}
STREAM_LAG = 0.25  # seconds


class Doorbell:
    def __init__(self, idle_limit: float = 5.0):
        self.idle_limit = idle_limit
        self._cond = threading.Condition(threading.Lock())
        self._rung = False
        self._due: list[float] = []  # time.monotonic() instants at which to ring, a heap
        self._slots: dict[str, float] = {}  # named instants, each replaced by the next one given

    def ring(self) -> None:
        """Wake the sleeper now (or make its next sleep end at once)."""
        with self._cond:
            self._rung = True
            self._cond.notify_all()

    def ring_in(self, seconds: float, slot: str | None = None) -> None:
        """Wake the sleeper ``seconds`` from now at the latest. With ``slot``, this time replaces the
        one last given for that slot (what a pump works out again on every pass, such as the next
        schedule's, must not pile up)."""
        at = time.monotonic() + max(0.0, seconds)
        with self._cond:
            now = time.monotonic()
            while self._due and self._due[0] <= now:  # passed: the sleeper was awake or is about to look
                heapq.heappop(self._due)
            if slot is None:
                heapq.heappush(self._due, at)
            else:
                self._slots[slot] = at
            self._cond.notify_all()

    def ring_by(self, seconds: float, slot: str) -> None:
        """Wake the sleeper ``seconds`` from now at the latest, unless ``slot`` already rings sooner:
        many calls in a row keep the first one's time (unlike ``ring_in``, which replaces it)."""
        at = time.monotonic() + max(0.0, seconds)
        with self._cond:
            if slot not in self._slots or at < self._slots[slot]:
                self._slots[slot] = at
                self._cond.notify_all()

    def clear_slot(self, slot: str) -> None:
        with self._cond:
            self._slots.pop(slot, None)

    def arm(self) -> None:
        """Call before looking for work: only a ring from now on ends the next sleep early."""
        with self._cond:
            self._rung = False

    def sleep(self, longest: float | None = None) -> bool:
        """Sleep until rung, the earliest ``ring_in`` time, or ``longest`` (default ``idle_limit``)
        seconds. True if woken by a ring or a due time, False if the time ran out."""
        end = time.monotonic() + (self.idle_limit if longest is None else longest)
        with self._cond:
            while True:
                now = time.monotonic()
                while self._due and self._due[0] <= now:
                    heapq.heappop(self._due)
                    self._rung = True
                for slot, at in list(self._slots.items()):
                    if at <= now:
                        del self._slots[slot]
                        self._rung = True
                if self._rung:
                    self._rung = False
                    return True
                until = min([end, *self._due[:1], *self._slots.values()])
                if until <= now:
                    return False
                self._cond.wait(until - now)

    # ------------------------------------------------------------ botocore clients

    def attach(self, client: Any) -> Any:
        """Ring after each call of ``client`` that may give a pump work (the message is in the queue,
        the schedule exists, by then); a message sent with DelaySeconds rings when it becomes visible."""
        client.meta.events.register("before-parameter-build", self._note_delay)
        client.meta.events.register("after-call", self._after_call)
        return client

    def _note_delay(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        # after-call does not see the request's parameters; the request context travels between them.
        if model.service_model.service_name != "sqs":
            return
        delays = [params.get("DelaySeconds")] + [entry.get("DelaySeconds") for entry in params.get("Entries") or ()]
        context["loopline_delays"] = [d for d in delays if isinstance(d, int) and d > 0]

    def _after_call(self, model: Any, context: dict[str, Any], http_response: Any = None, **_: Any) -> None:
        service = model.service_model.service_name
        if model.name in _WRITES.get(service, ()):
            self.ring_by(STREAM_LAG, "stream-records")
            return
        if model.name not in _WAKING.get(service, ()):
            return
        if http_response is not None and getattr(http_response, "status_code", 200) >= 300:
            return  # refused: nothing was sent
        for delay in context.get("loopline_delays") or ():
            self.ring_in(delay)
        self.ring()
