"""History on DynamoDB: the HistoryTable of template.yaml, one conditional put per entry.

Layout: ``pk = "RUN#<run id>"`` holds a run's entries, ``pk = "AUDIT"`` the operator's actions
(a handful per minute at most: one partition is far below its write limit); ``sk`` is the entry's
sort key (its time, then the change record's sequence number or the request id), so a query reads
them in time order and a page's cursor is the last sort key it held. ``entry`` is the entry as
JSON; ``ttl`` is when DynamoDB may delete it (its run's workflow's retention, else the deployment's,
after its time).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from statemachine.history import (
    AuditAction,
    AuditEntry,
    AuditQuery,
    HistoryEntry,
    Retention,
    decode_action,
    decode_entry,
    encode_action,
    encode_entry,
)

from ..clock import parse_iso
from ..ports import Page
from .dynamo_batches import keep_all
from .dynamo_calls import Refused, call

AUDIT_PK = "AUDIT"


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


class DynamoHistory:
    def __init__(self, client, table: str, retention: Retention):
        self._db = client
        self.table = table
        self.retention = retention

    def _item(self, pk: str, sk: str, at: str, body: dict[str, Any], extra: dict[str, str] | None = None,
              retention: Retention | None = None) -> dict[str, Any]:
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "entry": {"S": json.dumps(body, separators=(",", ":"))},
                **{name: {"S": value} for name, value in (extra or {}).items()}}
        expires = (retention or self.retention).expires(parse_iso(at))
        if expires is not None:
            item["ttl"] = {"N": str(expires)}
        return item

    def _put(self, item: dict[str, Any]) -> bool:
        try:
            call(self._db, "put_item", TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Refused:
            return False  # the same change record (or request) delivered again: kept once
        return True

    def append(self, entry: HistoryEntry, retention: Retention | None = None) -> bool:
        return self._put(self._entry_item(entry, retention))

    def _entry_item(self, entry: HistoryEntry, retention: Retention | None = None) -> dict[str, Any]:
        return self._item(run_pk(entry.run_id), entry.sort_key, entry.at, encode_entry(entry), retention=retention)

    def append_all(self, entries: Sequence[HistoryEntry],
                   retention: Mapping[str, Retention | None] | None = None) -> list[bool]:
        """A stream batch's entries in a few requests (dynamo_batches.py): which are there already is
        read first, then the others are written 25 to a request. ``retention``: by run id, each run's."""
        keep = retention or {}
        return keep_all(self._db, self.table, [self._entry_item(entry, keep.get(entry.run_id)) for entry in entries],
                        self._put)

    def of_run(self, run_id: str, cursor: str | None = None, limit: int = 100) -> Page[HistoryEntry]:
        items, more = self._query(run_pk(run_id), cursor, None, limit, None)
        entries = [decode_entry(run_id, json.loads(i["entry"]["S"])) for i in items]
        return Page(entries, entries[-1].sort_key if more and entries else None)

    def record_action(self, entry: AuditEntry) -> bool:
        # What GET /audit filters on also as attributes of their own (the run and workflow when known).
        extra = {"actor": entry.actor, "action": entry.action.value}
        extra.update({name: value for name, value in (("run_id", entry.run_id), ("workflow_id", entry.workflow_id))
                      if value})
        return self._put(self._item(AUDIT_PK, entry.sort_key, entry.at, encode_action(entry), extra))

    def actions(self, actor: str | None = None, action: AuditAction | Iterable[AuditAction] | None = None,
                since: str | None = None, cursor: str | None = None, limit: int = 100, *, until: str | None = None,
                workflow_id: str | None = None, run_id: str | None = None) -> Page[AuditEntry]:
        query = AuditQuery.of(actor, action, since, until, workflow_id, run_id)
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses = []
        for name, value in (("actor", query.actor), ("run_id", query.run_id), ("workflow_id", query.workflow_id)):
            if value is not None:
                names[f"#{name}"], values[f":{name}"] = name, {"S": value}
                clauses.append(f"#{name} = :{name}")
        if query.actions:
            names["#action"] = "action"
            for n, one in enumerate(sorted(a.value for a in query.actions)):
                values[f":action{n}"] = {"S": one}
            clauses.append(f"#action IN ({', '.join(f':action{n}' for n in range(len(query.actions)))})")
        items, more = self._query(AUDIT_PK, cursor, query.since, limit,
                                  (" AND ".join(clauses), names, values) if clauses else None, query.until)
        entries = [decode_action(json.loads(i["entry"]["S"])) for i in items]
        return Page(entries, entries[-1].sort_key if more and entries else None)

    def _query(self, pk: str, cursor: str | None, since: str | None, limit: int,
               where: tuple[str, dict[str, str], dict[str, Any]] | None,
               until: str | None = None) -> tuple[list[dict], bool]:
        """Up to ``limit`` items of ``pk`` after ``cursor`` (from ``since``, before ``until``), and whether more
        may follow."""
        values: dict[str, Any] = {":p": {"S": pk}}
        condition = "pk = :p"
        if cursor is not None and (since is None or cursor >= since):
            condition, values[":after"] = condition + " AND sk > :after", {"S": cursor}
        elif since is not None:
            condition, values[":after"] = condition + " AND sk >= :after", {"S": since}
        if until is not None and ":after" not in values:
            condition, values[":until"] = condition + " AND sk < :until", {"S": until}
        kwargs: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": condition,
                                  "ExpressionAttributeValues": values, "ConsistentRead": True}
        if where is not None:  # the audit's filters: copied onto the entry's own attributes when written
            filter_expression, names, filter_values = where
            kwargs.update(FilterExpression=filter_expression, ExpressionAttributeNames=names)
            values.update(filter_values)
        found: list[dict] = []
        while True:
            kwargs["Limit"] = limit + 1 - len(found)  # one more than asked: tells whether a next page exists
            reply = call(self._db, "query", **kwargs)
            # A key condition takes one range on the sort key: with a lower bound, ``until`` ends the reading
            # here (the items come in sort-key order, so the first at or past it ends the page).
            kept = [i for i in reply["Items"] if until is None or i["sk"]["S"] < until]
            found += kept
            if len(found) > limit:
                return found[:limit], True
            last = reply.get("LastEvaluatedKey")
            if len(kept) < len(reply["Items"]) or last is None or (until is not None and last["sk"]["S"] >= until):
                return found, False
            kwargs["ExclusiveStartKey"] = last
