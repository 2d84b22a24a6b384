"""`sam build`'s dependency step (the Makefile's build-* targets): requirements.txt into a function's
artifacts directory.

The four functions ship the same requirements, and SAM never shares a makefile build between
functions, so four pip installs used to run side by side (most of the build's time). Here the
first target to arrive installs them once, beside the functions' directories in the build
directory, under a lock (sam build runs the targets in parallel); each target copies that install.
The install is keyed by requirements.txt and the Python version, so a build directory kept
between builds (`sam build --cached`) never reuses an install made for other requirements.

Usage: python scripts/install_requirements.py ARTIFACTS_DIR
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DONE = ".installed"  # written last: an install interrupted half-way is redone, not copied


def shared_install(artifacts: Path, requirements: Path) -> Path:
    key = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    return artifacts.resolve().parent / f".requirements-{key}"


def install(artifacts: Path, requirements: Path = ROOT / "requirements.txt") -> None:
    shared = shared_install(artifacts, requirements)
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if not (shared / DONE).exists():
            shutil.rmtree(shared, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(requirements),
                            "-t", str(shared)], check=True)
            (shared / DONE).touch()
    shutil.copytree(shared, artifacts, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns(DONE))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    install(Path(sys.argv[1]))
