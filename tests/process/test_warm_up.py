"""publish.warm_up: pays the first-use costs offline (no connection attempted), and the publication
afterwards no longer imports the HTTP stack or the planner inside the first request's time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import socket, sys
attempts = []
real_connect = socket.socket.connect
def connect(self, address):
    attempts.append(address)
    raise OSError("no network in warm_up")
socket.socket.connect = connect
before = {m for m in ("httpcore", "crossposter.plan", "PIL.PngImagePlugin") if m in sys.modules}
import crossposter.publish as pub
pub.warm_up(sys.argv[1].split(","))
after = [m for m in ("httpcore", "crossposter.plan", "PIL.PngImagePlugin", "crossposter.platforms.bluesky")
         if m in sys.modules]
if "crossposter.platforms.bluesky" in sys.modules:
    # pydantic completes a model on first use: the ones a post and its answers need are complete now
    from atproto_client import models
    for model in (models.AppBskyFeedPost.Record, models.AppBskyEmbedImages.Main, models.ComAtprotoRepoPutRecord.Data,
                  models.ComAtprotoRepoPutRecord.Response, models.ComAtprotoRepoUploadBlob.Response):
        if not model.__pydantic_complete__:
            after.append(f"incomplete {model.__name__}")
print(sorted(before), after, attempts)
"""


def _run(platforms: str) -> str:
    proc = subprocess.run([sys.executable, "-c", _CHILD, platforms], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_warm_up_builds_the_bluesky_http_stack_and_the_planner_without_connecting() -> None:
    out = _run("bluesky,mastodon,x")
    assert out.startswith("[] "), out  # nothing of it was imported before
    assert "'httpcore'" in out and "'crossposter.plan'" in out and "'PIL.PngImagePlugin'" in out, out
    assert "'crossposter.platforms.bluesky'" in out, out
    assert "incomplete" not in out, out
    assert out.endswith(" []"), out  # no connection attempted


def test_warm_up_without_bluesky_does_not_build_its_http_stack() -> None:
    out = _run("x")
    assert "'httpcore'" not in out, out
    assert "'crossposter.plan'" in out, out
