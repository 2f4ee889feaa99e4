"""mastodon-mock, the stateful Mastodon API server from PyPI, on 127.0.0.1: shared by tests and benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(port: int) -> list[str]:
    exe = shutil.which("mastodon_mock")
    base = [exe] if exe else [sys.executable, "-m", "mastodon_mock"]
    return [*base, "serve", "--in-memory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/instance", timeout=1.0) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
