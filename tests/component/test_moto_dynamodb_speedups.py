"""loopline/embedded/moto_update_expressions.py, moto_condition_expressions.py, moto_attribute_values.py,
moto_queries.py, moto_item_size.py:
moto answers every request of tests/component/moto_answers.py with the same status and body with them
as without them (each side in a process of its own: they stay installed once installed), and the
embedded default uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _answers(*flags: str) -> list[dict]:
    # One hash seed for both: moto keeps string sets in Python sets, whose order follows it.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, "-m", "tests.component.moto_answers", *flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_moto_answers_the_same_with_the_speedups():
    without, with_them = _answers(), _answers("--speedups")
    statuses = [answer.get("status") for answer in without]
    assert len(without) > 90 and 200 in statuses and 400 in statuses  # successes and refusals both compared
    for number, (expected, got) in enumerate(zip(without, with_them, strict=True)):
        assert got == expected, f"answer {number} differs"


def test_the_embedded_default_keeps_each_update_expression_its_passed_checks_and_its_condition(aws):
    from loopline.embedded import moto_condition_expressions
    from loopline.embedded import moto_update_expressions as speedups

    db = aws.client("dynamodb")
    table = aws.stack.physical["RunsTable"]
    expression = "SET #kept = :v, #other = :v REMOVE #gone"
    condition = "attribute_not_exists(#gone) AND (attribute_not_exists(#kept) OR #kept <> :v)"
    names = {"#kept": "kept_attribute", "#other": "other_attribute", "#gone": "gone"}
    for value in ("one", "two"):
        db.update_item(TableName=table, Key={"pk": {"S": "speedups"}, "sk": {"S": "RUN"}}, UpdateExpression=expression,
                       ConditionExpression=condition, ExpressionAttributeNames=names,
                       ExpressionAttributeValues={":v": {"S": value}})
    tree = speedups.trees[expression]
    assert id(tree) in speedups.pickled
    assert any(key[0] == id(tree) and dict(key[1]) == names for key in speedups.passed)
    assert [token.text for token in moto_condition_expressions.tokens[condition]][:3] == ["attribute_not_exists", "(",
                                                                                         "#gone"]
    item = db.get_item(TableName=table, Key={"pk": {"S": "speedups"}, "sk": {"S": "RUN"}})["Item"]
    assert item["kept_attribute"] == {"S": "two"}


def test_the_same_expression_with_names_that_fail_the_skipped_checks_is_still_refused(aws):
    from botocore.exceptions import ClientError

    db = aws.client("dynamodb")
    table = aws.stack.physical["RunsTable"]
    key = {"pk": {"S": "refused"}, "sk": {"S": "RUN"}}
    expression = "SET #a = :v, #b = :v"
    db.update_item(TableName=table, Key=key, UpdateExpression=expression,
                   ExpressionAttributeNames={"#a": "one", "#b": "two"}, ExpressionAttributeValues={":v": {"S": "v"}})
    for names, message in (({"#a": "one", "#b": "one"}, "overlap"), ({"#a": "one", "#b": "sk"}, "part of the key")):
        with pytest.raises(ClientError, match=message):
            db.update_item(TableName=table, Key=key, UpdateExpression=expression, ExpressionAttributeNames=names,
                           ExpressionAttributeValues={":v": {"S": "v"}})


def test_plain_values_are_copied_and_the_others_left_to_moto():
    from loopline.embedded.moto_attribute_values import _NOT_PLAIN, _plain_copy

    plain = {"M": {"s": {"S": "x"}, "l": {"L": [{"N": "1"}, {"NULL": True}, {"SS": ["a"]}]}, "b": {"BOOL": False}}}
    copied = _plain_copy(plain)
    assert copied == plain
    assert copied["M"]["l"]["L"] is not plain["M"]["l"]["L"]  # a copy, as moto's walk builds one
    for other in ({"B": b"x"}, {"M": {"x": {"BS": [b"y"]}}}, {"M": {"": {"S": "empty key"}}}, {"S": 1},
                  {"S": "x", "N": "1"}, {"L": [{"B": b"z"}]}, "text"):
        assert _plain_copy(other) is _NOT_PLAIN


def test_a_moto_whose_validator_changed_is_refused():
    from moto.dynamodb.parsing import validators

    from loopline.embedded.moto_update_expressions import _check_processors

    class Changed:
        UpdateExpressionValidator = type("V", (), {"get_ast_processors": lambda self: [
            validators.OverlappingPathsValidator({}), validators.ActionCountValidator(),
            validators.UpdateHashRangeKeyValidator([], {})]})

    _check_processors(validators)  # the installed moto's order
    with pytest.raises(RuntimeError, match="needs review"):
        _check_processors(Changed)


def test_a_condition_is_parsed_again_unless_the_same_names_and_values_hold_the_same(aws):
    from moto.dynamodb.comparisons import create_condition_expression_parser

    condition = "#st = :from OR attribute_not_exists(#st)"
    names, values = {"#st": "status"}, {":from": {"S": "READY"}}
    first = create_condition_expression_parser(condition, names, values)
    op = first.parse()
    again = create_condition_expression_parser(condition, names, values)
    assert again.parse() is op  # the backend's parse after the response handler's, in one request
    assert (again.expr_attr_names_found, again.expr_attr_values_found) == (["#st", "#st"], [":from"])
    values[":from"]["S"] = "DONE"  # changed in place: parsed anew, with what it holds now
    changed = create_condition_expression_parser(condition, names, values).parse()
    assert changed is not op and repr(changed) != repr(op)
    assert create_condition_expression_parser(condition, dict(names), values).parse() is not changed


def test_the_embedded_default_queries_one_partition_without_listing_the_table(aws):
    from moto.dynamodb.models.table import Table

    assert Table.query.__module__ == "loopline.embedded.moto_queries"
    db = aws.client("dynamodb")
    table = aws.stack.physical["RunsTable"]
    for run in ("run-a", "run-b", "run-c"):
        for n in (3, 1, 2):
            db.put_item(TableName=table, Item={"pk": {"S": run}, "sk": {"S": f"T#{n}"}})
    reply = db.query(TableName=table, KeyConditionExpression="pk = :p AND sk > :a",
                     ExpressionAttributeValues={":p": {"S": "run-b"}, ":a": {"S": "T#1"}}, ConsistentRead=True)
    assert [(item["pk"]["S"], item["sk"]["S"]) for item in reply["Items"]] == [("run-b", "T#2"), ("run-b", "T#3")]
    scanned = db.scan(TableName=table, FilterExpression="begins_with(pk, :r)",
                      ExpressionAttributeValues={":r": {"S": "run-"}})["Items"]
    assert len(scanned) == 9  # a scan after the query still lists the whole table


def test_the_query_benchmark_prints_both_sides_at_each_size():
    done = subprocess.run([sys.executable, "bench/moto_queries.py", "--sizes", "2,4", "--items-per-run", "3",
                           "--partition-sizes", "20,30", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["2", "4", "2", "4", "20", "30"] and rows[1][1] == "12"
    assert all(row[-1].endswith("x") for row in rows)


def test_the_embedded_default_sums_a_new_items_size_once_and_still_refuses_one_over_the_limit(aws):
    from botocore.exceptions import ClientError
    from moto.dynamodb.models.dynamo_type import Item

    assert Item.__init__.__module__ == "loopline.embedded.moto_item_size"
    db = aws.client("dynamodb")
    table = aws.stack.physical["RunsTable"]
    key = {"pk": {"S": "size"}, "sk": {"S": "RUN"}}
    filler = 405_000 - len("pkskdata") - len("sizeRUN")  # moto's limit, counted as it counts
    db.put_item(TableName=table, Item={**key, "data": {"S": "x" * filler}})
    with pytest.raises(ClientError, match="Item size has exceeded the maximum allowed size"):
        db.put_item(TableName=table, Item={**key, "data": {"S": "x" * (filler + 1)}})
    assert len(db.get_item(TableName=table, Key=key)["Item"]["data"]["S"]) == filler
