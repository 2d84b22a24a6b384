"""DynamoDB requests for DynamoStore: a refused condition as a value the store turns into an outcome.

``call`` makes one request; a ConditionalCheckFailedException comes out as ``Refused`` (with the
item as the condition found it, when the request asked for it), any other AWS error as StoreError.
``transact`` makes one TransactWriteItems of named items; a cancellation by failed conditions
comes out as ``Cancelled``, naming the items whose condition failed. Both keep the AWS error, so
the store raises its domain outcome ``from`` it.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from ..ports import RunGone, StoreError


class Refused(Exception):
    """A ConditionalCheckFailedException. ``item``: the item as the condition found it, if the request
    asked for it (ALL_OLD) and there is one."""

    def __init__(self, error: ClientError):
        super().__init__(str(error))
        self.error = error
        item = error.response.get("Item")  # the stubs type the error's response loosely
        self.item: dict | None = item if isinstance(item, dict) else None


class Cancelled(Exception):
    """A transaction cancelled by failed conditions. ``failed``: the name of each item whose condition
    failed, with that item as it was (if asked for and there is one)."""

    def __init__(self, error: ClientError, failed: dict[str, dict | None]):
        super().__init__(str(error))
        self.error = error
        self.failed = failed


def found(run_id: str, item: dict | None, error: ClientError) -> dict:
    """The run item a refused write found: RunGone if there is none (a refusal on a missing item)."""
    if not item:
        raise RunGone(run_id) from error
    return item


def call(client, operation: str, **kwargs):
    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise Refused(error) from error
        raise StoreError(f"DynamoDB {operation} failed: {error}") from error


def transact(client, items: list[tuple[str, dict]]) -> None:
    """One TransactWriteItems of the named items. DynamoDB gives one cancellation reason per item, in
    the order of the items: each is matched to its item's name, never read by position."""
    try:
        client.transact_write_items(TransactItems=[item for _, item in items])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            reasons = error.response.get("CancellationReasons") or []
            failed: dict[str, dict | None] = {
                name: dict(reason["Item"]) if reason.get("Item") else None
                for (name, _), reason in zip(items, reasons) if reason.get("Code") == "ConditionalCheckFailed"}
            if failed:
                raise Cancelled(error, failed) from error
        # A conflict with another transaction, a throttle: not a domain outcome, the message is retried.
        raise StoreError(f"DynamoDB transact_write_items failed: {error}") from error
