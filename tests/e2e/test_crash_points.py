"""Issue #5 item 1, in CI: crash before and after every AWS call of a run, restart, and the run ends as a
clean one would (bench/crash_points.py; here the chain and the loop, the slower others in the bench)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "crash_points.py"


@pytest.mark.parametrize("workflow", ["chain", "loop"])
def test_every_crash_point_recovers(workflow):
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", workflow, "--json"], capture_output=True,
                          text=True, timeout=600)
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["tried"] > 40
    assert counts["passed"] == counts["tried"], counts["failures"][:3]
