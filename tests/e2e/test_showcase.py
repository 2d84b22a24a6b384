"""README's first command, `make showcase`, runs scripts/showcase.py: it must work as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_showcase_runs_to_the_end():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "showcase.py")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "-> 410" in done.stdout and "run COMPLETED" in done.stdout, done.stdout[-2000:]
    assert '"outcome": "published"' in done.stdout
