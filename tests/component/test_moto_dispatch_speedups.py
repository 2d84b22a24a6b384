"""loopline/embedded/moto_dispatch.py's kept URLs: every backend's are moto's own, with ISO regions
enabled or not, and a caller that changes its copy changes nobody else's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import os
from moto.backends import get_backend, list_of_moto_modules
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.base_backend import BaseBackend
original = BaseBackend.urls
from loopline.embedded.moto_dispatch import install_urls_cache
install_urls_cache()
compared = 0
for name in list_of_moto_modules():
    try:
        backends = get_backend(name)
        regions = backends[DEFAULT_ACCOUNT_ID]
        found = [regions[region] for region in ("us-east-1", "eu-west-1", "aws", "global") if region in regions]
    except Exception:  # not a BackendDict (moto's own API), or a module that does not load here
        continue
    for backend in found:
        for iso in ("false", "true", "false"):  # the flag moves between requests: each its own URLs
            os.environ["MOTO_ENABLE_ISO_REGIONS"] = iso
            for _ in range(2):  # built, then kept
                assert backend.urls == original.fget(backend), (name, iso)
            mine = backend.urls
            mine["changed"] = None
            assert "changed" not in backend.urls
            compared += 1
print(compared)
"""


def test_every_backend_s_kept_urls_are_moto_s_with_and_without_iso_regions() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=True)
    assert int(done.stdout.strip().splitlines()[-1]) > 100


def test_the_embedded_default_keeps_them(aws) -> None:
    from moto.core.base_backend import BaseBackend

    assert BaseBackend.urls.fget.__module__ == "loopline.embedded.moto_dispatch"
    assert aws.client("dynamodb").list_tables()["TableNames"]  # answered through the kept URLs
