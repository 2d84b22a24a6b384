"""Write requirements.txt (what `sam build` installs into each function) from pyproject.toml.

pyproject.toml's [project].dependencies is the one list of runtime
dependencies; tests/unit/test_requirements.py fails when the two differ.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# Generated from pyproject.toml by scripts/gen_requirements.py: edit pyproject.toml, not this file.\n"


def render() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return HEADER + "".join(f"{dep}\n" for dep in project["dependencies"])


def main() -> int:
    (ROOT / "requirements.txt").write_text(render())
    print("requirements.txt written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
