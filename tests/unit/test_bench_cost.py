"""bench/cost.py's pricing arithmetic: known usage in, known dollars out (no AWS, no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import cost  # noqa: E402


def test_a_million_of_each_unit_costs_its_list_price() -> None:
    usage = cost.Usage(lambda_requests=1e6, dynamodb_wru=1e6, dynamodb_rru=1e6, sqs_requests=1e6,
                       scheduler_invocations=1e6, s3_puts=1e6, s3_gets=1e6)
    dollars = cost.price(usage)
    assert dollars["lambda"] == pytest.approx(0.20)
    assert dollars["dynamodb"] == pytest.approx(0.625 + 0.125)  # on-demand, since November 2024
    assert dollars["sqs"] == pytest.approx(0.40)
    assert dollars["scheduler"] == pytest.approx(1.00)
    assert dollars["s3"] == pytest.approx(5.00 + 0.40)


def test_gb_seconds_of_a_512_mb_worker() -> None:
    # 1,000 invocations of 44 ms at 0.5 GB: 22 GB-s.
    assert cost.lambda_gb_seconds(1000, 44.0, memory_gb=0.5) == pytest.approx(22.0)
    # Billed per millisecond, rounded up.
    assert cost.lambda_gb_seconds(1, 10.2, memory_gb=1.0) == pytest.approx(0.011)
    assert cost.price(cost.Usage(lambda_gb_seconds=1e6))["lambda"] == pytest.approx(16.6667)


def test_per_million_transitions_divides_by_the_transitions() -> None:
    # A run of 10 transitions: 33 WRU, 29 RRU, 10 SQS requests, 11 invocations of 44 ms at 512 MB.
    usage = cost.Usage(lambda_requests=11, lambda_gb_seconds=cost.lambda_gb_seconds(11, 44.0, 0.5),
                       dynamodb_wru=33, dynamodb_rru=29, sqs_requests=10)
    per = cost.per_million(usage, 10)
    assert per["dynamodb"] == pytest.approx(3.3 * 0.625 + 2.9 * 0.125)  # 2.425
    assert per["sqs"] == pytest.approx(0.40)
    assert per["lambda"] == pytest.approx(1.1 * 0.20 + 1.1 * 0.022 * 16.6667)
    assert sum(per.values()) == pytest.approx(2.425 + 0.40 + 0.22 + 0.40333, rel=1e-4)


def test_capacity_units_from_sizes() -> None:
    assert cost.write_units(0) == 1
    assert cost.write_units(1024) == 1
    assert cost.write_units(1025) == 2
    assert cost.write_units(1500, transactional=True) == 4
    assert cost.read_units(4096, consistent=True) == 1
    assert cost.read_units(4097, consistent=True) == 2
    assert cost.read_units(100, consistent=False) == 0.5
    assert cost.read_units(100, consistent=False, transactional=True) == 2
    assert cost.sqs_requests(150) == 1
    assert cost.sqs_requests(64 * 1024 + 1) == 2


def test_item_size_counts_names_and_values() -> None:
    # "pk" (2) + "run#1" (5); "n" (1) + 123 (3 digits: 2 + 1); "ok" (2) + BOOL (1);
    # "m" (1) + map (3 + "a" 1 + "x" 1 + 1).
    item = {"pk": {"S": "run#1"}, "n": {"N": "123"}, "ok": {"BOOL": True}, "m": {"M": {"a": {"S": "x"}}}}
    assert cost.item_size(item) == 7 + 4 + 3 + 7
