"""Session fixture: a `mastodon-mock` server on 127.0.0.1 (loaded as a plugin by tests/conftest.py).

mastodon-mock is a stateful Mastodon API server from PyPI; one in-memory instance
serves the whole session, so tests must use content of their own (unique text).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

MOCK_TOKEN = "mock_token"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class MastodonServer:
    url: str
    token: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(port: int) -> list[str]:
    exe = shutil.which("mastodon_mock")
    base = [exe] if exe else [sys.executable, "-m", "mastodon_mock"]
    return [*base, "serve", "--in-memory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/instance", timeout=1.0) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


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
