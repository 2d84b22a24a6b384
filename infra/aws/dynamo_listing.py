"""RunQueries on DynamoDB: the runs table's two indexes, queried, never scanned.

``ByStatus`` (partition: the run's ``status``, sort: ``created_at``) and ``ByWorkflow`` (partition:
``workflow_id``, sort: ``created_at``), declared on RunsTable in template.yaml. Both key on
attributes the run item already has and that the writes which change a run's status already set,
so a transition costs no extra request; task items have no ``created_at`` and stay out of them
(sparse indexes). They project the few attributes a listing shows (``RunSummary``).

A listing with no filter asks each status's partition for its newest runs and merges them (there
are six statuses): no query reads more than the page it may contribute. Status and workflow
together read the workflow's partition with the status as a filter. Counts read the index keys.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from statemachine.status import RunStatus

from ..clock import iso, parse_iso
from ..listing import RunPage, RunQuery, RunSummary, in_window, newest_first
from ..ports import Payloads
from .claims import DEFAULT_THRESHOLD, JsonAttributes
from .dynamo_calls import call

STATUS_INDEX = "ByStatus"
WORKFLOW_INDEX = "ByWorkflow"
MAX_READ = 1000  # items per request: a page never needs more than limit + 1 from one partition


class DynamoRunQueries:
    def __init__(self, client, runs_table: str, payloads: Payloads | None = None,
                 claim_threshold: int = DEFAULT_THRESHOLD):
        self._db = client
        self._table = runs_table
        self._json = JsonAttributes(payloads, claim_threshold)

    def list_runs(self, query: RunQuery) -> RunPage:
        need = query.limit + 1  # one more than shown: whether another page follows
        found: list[RunSummary] = []
        if query.workflow_id is not None:
            found = self._read(WORKFLOW_INDEX, "workflow_id", query.workflow_id, query, need)
        else:
            for status in [query.status] if query.status is not None else list(RunStatus):
                found += self._read(STATUS_INDEX, "status", status, query, need)
        return newest_first(found, query.limit)

    def count_runs(self, workflow_id: str | None = None, since: str | None = None,
                   until: str | None = None) -> dict[str, int]:
        counts = {status.value: 0 for status in RunStatus}
        window = RunQuery(workflow_id=workflow_id, since=since, until=until)
        if workflow_id is None:
            for status in RunStatus:
                narrowed = _key_condition("status", status, window)
                if narrowed is None:
                    continue
                condition, names, values = narrowed
                counts[status] = sum(reply["Count"] for reply in self._pages(
                    IndexName=STATUS_INDEX, Select="COUNT", KeyConditionExpression=condition,
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values))
            return counts
        narrowed = _key_condition("workflow_id", workflow_id, window)
        if narrowed is None:
            return counts
        condition, names, values = narrowed
        for reply in self._pages(IndexName=WORKFLOW_INDEX, KeyConditionExpression=condition, ProjectionExpression="#s",
                                 ExpressionAttributeNames={**names, "#s": "status"}, ExpressionAttributeValues=values):
            for item in reply["Items"]:
                counts[item["status"]["S"]] = counts.get(item["status"]["S"], 0) + 1
        return counts

    # ------------------------------------------------------------ reading an index

    def _read(self, index: str, key: str, value: str, query: RunQuery, need: int) -> list[RunSummary]:
        """The newest ``need`` runs of one partition that belong on the page (and any that tie with the
        last of them on created_at, which the merge orders by run id)."""
        narrowed = _key_condition(key, value, query)
        if narrowed is None:
            return []
        condition, names, values = narrowed
        kwargs: dict[str, Any] = {"IndexName": index, "ScanIndexForward": False, "Limit": min(need + 1, MAX_READ),
                                  "KeyConditionExpression": condition}
        if query.status is not None and key != "status":
            names["#s"] = "status"
            values[":s"] = {"S": str(query.status)}
            kwargs["FilterExpression"] = "#s = :s"
            # The limit counts the items read before the filter: read more per request, fewer requests.
            kwargs["Limit"] = min(max(need * 4, 200), MAX_READ)
        kept: list[RunSummary] = []
        for reply in self._pages(ExpressionAttributeNames=names, ExpressionAttributeValues=values, **kwargs):
            kept += [s for s in map(self._summary, reply["Items"]) if in_window(s, query)]
            # Newest first: once the last run read is older than the need-th kept, no later one can
            # be on the page (runs that tie with the need-th on created_at are all read first).
            if len(kept) >= need and kept[-1].created_at < kept[need - 1].created_at:
                break
        return kept

    def _pages(self, **kwargs):
        kwargs["TableName"] = self._table
        while True:
            reply = call(self._db, "query", **kwargs)
            yield reply
            if "LastEvaluatedKey" not in reply:
                return
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def _summary(self, item: dict[str, Any]) -> RunSummary:
        parent = self._json.load(item["parent"]) if "parent" in item else None
        return RunSummary(item["pk"]["S"], item["workflow_id"]["S"], item["status"]["S"], item["created_at"]["S"],
                          item["ended_at"]["S"] if "ended_at" in item else None, parent)


def _key_condition(key: str, value: str, query: RunQuery) -> tuple[str, dict[str, str], dict[str, Any]] | None:
    """One partition of an index, narrowed to ``query``'s window on created_at (None: the window is
    empty). ``until`` is exclusive: times are stored to the millisecond in one fixed format
    (infra/clock.iso), so "before until" is "at or before until less 1 ms". The page's position is
    inclusive here: in_window drops the runs that tie with it and are not older."""
    names: dict[str, str] = {"#k": key}
    values: dict[str, Any] = {":k": {"S": str(value)}}
    condition = "#k = :k"
    before = iso(parse_iso(query.until) - timedelta(milliseconds=1)) if query.until is not None else None
    uppers = [u for u in (before, query.after.created_at if query.after else None) if u is not None]
    upper = min(uppers) if uppers else None
    if query.since is not None and upper is not None and query.since > upper:
        return None  # nothing is in it (and BETWEEN refuses a low bound above its high one)
    if query.since is not None or upper is not None:
        names["#c"] = "created_at"
    if query.since is not None and upper is not None:
        condition += " AND #c BETWEEN :lo AND :hi"
        values.update({":lo": {"S": query.since}, ":hi": {"S": upper}})
    elif query.since is not None:
        condition += " AND #c >= :lo"
        values[":lo"] = {"S": query.since}
    elif upper is not None:
        condition += " AND #c <= :hi"
        values[":hi"] = {"S": upper}
    return condition, names, values
