"""Session fixture: a `mastodon-mock` server on 127.0.0.1 (loaded as a plugin by tests/conftest.py).

mastodon-mock is a stateful Mastodon API server from PyPI; one in-memory instance
serves the whole session, so tests must use content of their own (unique text).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from testing.mastodon import answers as _answers
from testing.mastodon import command as _command
from testing.mastodon import free_port as _free_port
from testing.mastodon import stop as _stop

MOCK_TOKEN = "mock_token"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class MastodonServer:
    url: str
    token: str


@pytest.fixture(scope="session")
def mastodon_server() -> Iterator[MastodonServer]:
    """A running mastodon-mock; fails (never skips) when it cannot start: it is a test dependency."""
    last_log = ""
    for _attempt in range(3):  # the free port can be taken between choosing and binding it
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        # an empty working folder: mastodon-mock reads .mastodon_mock.toml from there
        with tempfile.TemporaryFile() as log, tempfile.TemporaryDirectory(prefix="mastodon-mock-") as workdir:
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            proc = subprocess.Popen(_command(port), stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while time.monotonic() < deadline and proc.poll() is None and not _answers(url):
                    time.sleep(0.1)
                if proc.poll() is None and _answers(url):
                    yield MastodonServer(url=url, token=MOCK_TOKEN)
                    return
                log.seek(0)
                last_log = log.read().decode("utf-8", "replace")[-2000:]
            finally:
                _stop(proc)
    pytest.fail(f"mastodon-mock did not start on 127.0.0.1 within {START_TIMEOUT:.0f} s:\n{last_log}")
