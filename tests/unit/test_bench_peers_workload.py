"""bench/peers/_workload.py: what every engine script of peers.py measures, by the wall or by CPU."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "peers"))

import _workload  # noqa: E402


def measured(capsys, *argv: str) -> dict:
    sizes: list[int] = []

    def run(size: int) -> None:
        sizes.append(size)
        time.sleep(0.05)  # waiting: wall time, no CPU

    _workload.measure(_workload.parse(list(argv)), run, "probe")
    figures = json.loads(capsys.readouterr().out)
    figures["sizes"] = sizes
    return figures


def test_the_wall_clock_counts_waiting_and_the_cpu_clock_does_not(capsys) -> None:
    wall = measured(capsys, "--workload", "W1", "--runs", "4")
    assert wall["sizes"] == [0] * 5 and wall["seconds"] >= 0.2 and "clock" not in wall  # a warm-up, then 4
    cpu = measured(capsys, "--workload", "W1", "--runs", "4", "--clock", "cpu")
    assert cpu["seconds"] < 0.1 and cpu["clock"] == "cpu" and cpu["rate"] == 4 / cpu["seconds"]
    w3 = measured(capsys, "--workload", "W3", "--items", "300", "--clock", "cpu")
    assert w3["sizes"] == [10, 300] and w3["unit"] == "items/s" and w3["count"] == 300
