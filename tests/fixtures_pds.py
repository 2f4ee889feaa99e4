"""A real Bluesky PDS (with its PLC directory) on 127.0.0.1 for the whole test session (`testing.pds`).

Loaded as a plugin by tests/conftest.py; test modules just ask for the `pds` fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from testing.pds import LocalPDS, StartFailed, Unavailable, start


def _unavailable(reason: str) -> None:
    """No PDS: a failure under CI (where it must run), a skip with the reason on a developer's machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"the local Bluesky PDS is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"local Bluesky PDS unavailable: {reason}")


@pytest.fixture(scope="session")
def pds() -> Iterator[LocalPDS]:
    try:
        running = start()
    except Unavailable as e:
        _unavailable(str(e))
        raise
    except StartFailed as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield running.server
    finally:
        running.stop()
