"""The distributions a deployment gives python tasks (LOOPLINE_PYTHON_PACKAGES), read for validation."""

from __future__ import annotations

import os
from importlib import metadata


def provided_packages(directory: str) -> tuple[str, ...]:
    """``name==version`` of each distribution installed in ``directory`` (``pip install --target``); an
    unreadable or missing directory provides nothing, so every requirement is refused by name."""
    if not os.path.isdir(directory):
        return ()
    found = set()
    for dist in metadata.distributions(path=[directory]):
        name = dist.metadata["Name"] if dist.metadata else None
        if name and dist.version:
            found.add(f"{name}=={dist.version}")
    return tuple(sorted(found))
