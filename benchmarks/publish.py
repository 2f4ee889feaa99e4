"""Publishing wall time vs. the network floor.

A 10-post thread with 2 images goes to three local servers — the real Bluesky PDS
(tests/pds, installed by .ci/install-pds.sh), mastodon-mock and the X fake from the
tests — each behind a reverse proxy that adds 100 ms to every request. The floor is
the longest single platform chain if its requests ran back to back: its request
count × 100 ms. Platforms run concurrently and images are uploaded one post ahead,
so the wall time can approach (or beat) that floor; the target is ≤ 1.2×.

    python benchmarks/publish.py [--delay 0.1] [--posts 10] [--runs 3]

Prints numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures_xfake import XFakeServer, _handler  # noqa: E402
from tests.test_crash_safety import CountingProxy  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_pds() -> tuple[subprocess.Popen[bytes], str]:
    node = shutil.which("node")
    if node is None or not (ROOT / "tests/pds/node_modules/@atproto/pds").is_dir():
        sys.exit("the local PDS is not installed: run .ci/install-pds.sh (needs Node 20)")
    proc = subprocess.Popen([node, "server.mjs", "--pds-port", str(free_port()), "--plc-port", str(free_port())],
                            cwd=ROOT / "tests/pds", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("ready"):
            return proc, msg["pds"]
    proc.kill()
    sys.exit("the PDS did not start")


def start_mastodon() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = shutil.which("mastodon_mock")
    cmd = [exe] if exe else [sys.executable, "-m", "mastodon_mock"]
    workdir = tempfile.mkdtemp(prefix="bench-mastodon-")
    proc = subprocess.Popen([*cmd, "serve", "--in-memory", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/v1/instance", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    sys.exit("mastodon-mock did not start")


def start_x() -> tuple[ThreadingHTTPServer, XFakeServer]:
    state = XFakeServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


def write_thread(folder: Path, marker: str, posts: int) -> Path:
    from PIL import Image

    Image.new("RGB", (800, 600), (10, 160, 60)).save(folder / "a.png")
    Image.new("RGB", (600, 800), (30, 30, 200)).save(folder / "b.jpg", quality=90)
    body = [f"Opening post of the benchmark thread {marker}.\n\n![first image](a.png)\n"]
    for i in range(2, posts + 1):
        img = "\n![second image](b.jpg)\n" if i == 2 else ""
        body.append(f"### Part {i}\nPost {i} of the benchmark thread {marker}.{img}\n")
    path = folder / "threads.md"
    path.write_text("# Bench\n\n## Benchmark thread\n\n" + "\n".join(body), encoding="utf-8")
    return path


#: Runs in a child process so that the servers and proxies (in this process) do not share its GIL.
CHILD = """
import json, sys, time
from pathlib import Path
import atproto, mastodon, tweepy  # noqa: F401 - imported before the clock starts
import crossposter.metadata as md
import crossposter.publish as pub
from crossposter.config import load_config

writes = 0
write_s = 0.0
real_update = md.update_thread_metadata
def counting(*a, **k):
    global writes, write_s
    writes += 1
    t = time.perf_counter()
    try:
        return real_update(*a, **k)
    finally:
        write_s += time.perf_counter() - t
md.update_thread_metadata = counting
if sys.argv[4] == "True":
    import logging
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)7.0f ms %(threadName)-14s %(message)s")
config = load_config(sys.argv[1])
t0 = time.perf_counter()
result = pub.publish_thread(config, Path(sys.argv[2]), "Benchmark thread", progress=False,
                            upload_ahead=sys.argv[3] == "True")
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "ok": result.ok, "totals": {p: o.total for p, o in result.outcomes.items()},
                  "outcomes": {p: [o.state, o.message] for p, o in result.outcomes.items()}, "writes": f"{writes} ({write_s:.2f} s)"}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay", type=float, default=0.1, help="seconds each proxy adds per request")
    ap.add_argument("--posts", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--trace", action="store_true", help="print the publisher's timestamped log of each run")
    args = ap.parse_args()

    pds_proc, pds_url = start_pds()
    masto_proc, masto_url = start_mastodon()
    x_srv, x_state = start_x()
    port = pds_url.rsplit(":", 1)[-1]
    proxies = {
        "bluesky": CountingProxy(pds_url, rewrite=[pds_url, f"http://localhost:{port}"], delay=args.delay),
        "mastodon": CountingProxy(masto_url, delay=args.delay),
        "x": CountingProxy(x_state.url, delay=args.delay),
    }
    try:
        handle = f"bench-{uuid.uuid4().hex[:6]}.test"
        password = uuid.uuid4().hex
        r = requests.post(f"{pds_url}/xrpc/com.atproto.server.createAccount",
                          json={"handle": handle, "email": f"{handle}@example.com", "password": password}, timeout=30)
        r.raise_for_status()
        os.environ.update(x_state.env)
        os.environ["CROSSPOSTER_BLUESKY_PASSWORD"] = password
        os.environ["CROSSPOSTER_MASTODON_ACCESS_TOKEN"] = "mock_token"
        print(f"{args.posts}-post thread, 2 images, 3 platforms, +{args.delay * 1000:.0f} ms per request; "
              "the publisher runs in its own process (SDKs imported before the clock starts), the Bluesky "
              "session is saved after the first run and reused, as in real use")
        print(f"{'mode':<14}{'delay':>6}{'run':>4}{'wall s':>9}{'floor s':>9}{'ratio':>7}   requests b/m/x"
              "   requests per post   archive writes")
        state = Path(tempfile.mkdtemp(prefix="bench-state-"))
        walls: dict[tuple[bool, float], list[float]] = {}
        floors: list[float] = []
        # Zero added delay first: what the servers and the publisher themselves cost on this machine.
        for delay in (0.0, args.delay):
            for p in proxies.values():
                p.delay = delay
            for upload_ahead in (True, False):
                for run in range(1, args.runs + 1):
                    folder = Path(tempfile.mkdtemp(prefix="bench-publish-"))
                    archive = write_thread(folder, uuid.uuid4().hex[:8], args.posts)
                    (folder / "crossposter.yaml").write_text(
                        f"state_dir: {state}\nplatforms:\n"
                        f"  bluesky: {{handle: {handle}, service: '{proxies['bluesky'].url}'}}\n"
                        f"  mastodon: {{instance: '{proxies['mastodon'].url}'}}\n"
                        f"  x: {{enabled: true, api_base: '{proxies['x'].url}', upload_base: '{proxies['x'].url}'}}\n",
                        encoding="utf-8")
                    for p in proxies.values():
                        p.arm(None, None)
                    child = subprocess.run([sys.executable, "-c", CHILD, str(folder / "crossposter.yaml"),
                                            str(archive), str(upload_ahead), str(args.trace)],
                                           capture_output=True, text=True, cwd=ROOT, timeout=300)
                    shutil.rmtree(folder, ignore_errors=True)
                    if child.returncode != 0:
                        print("  run failed:", child.stdout[-2000:], child.stderr[-2000:])
                        continue
                    out = json.loads(child.stdout.strip().splitlines()[-1])
                    if args.trace:
                        print(child.stderr)
                    if not out["ok"]:
                        print("  run failed:", out["outcomes"])
                        continue
                    counts = {p: x.count for p, x in proxies.items()}
                    floor = max(counts.values()) * args.delay
                    wall = out["wall"]
                    if run > 1:  # the first run of a mode pays for the Bluesky login / warm-up
                        walls.setdefault((upload_ahead, delay), []).append(wall)
                        if delay:
                            floors.append(floor)
                    per_post = "/".join(f"{counts[p] / out['totals'][p]:.2f}" for p in proxies)
                    ratio = f"{wall / floor:>7.2f}" if delay else f"{'-':>7}"
                    print(f"{'upload ahead' if upload_ahead else 'sequential':<14}{delay * 1000:>4.0f}ms{run:>4}"
                          f"{wall:>9.2f}{floor:>9.2f}{ratio}   {counts['bluesky']}/{counts['mastodon']}/{counts['x']}"
                          f"{'':>8}{per_post:<20}{out['writes']}")
        if floors and walls:
            floor = statistics.median(floors)
            print(f"\nmedian over runs 2..{args.runs} (floor {floor:.2f} s = longest chain's requests x "
                  f"{args.delay * 1000:.0f} ms):")
            for upload_ahead in (True, False):
                base = statistics.median(walls.get((upload_ahead, 0.0), [0.0]))
                slow = statistics.median(walls.get((upload_ahead, args.delay), [0.0]))
                print(f"  {'upload ahead' if upload_ahead else 'sequential':<13} wall {slow:.2f} s = "
                      f"{slow / floor:.2f}x floor; with no added delay {base:.2f} s, so the added latency cost "
                      f"{slow - base:.2f} s = {(slow - base) / floor:.2f}x floor")
        shutil.rmtree(state, ignore_errors=True)
    finally:
        for p in proxies.values():
            p.close()
        x_srv.shutdown()
        masto_proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pds_proc.pid, 15)
        masto_proc.wait(timeout=10)
        pds_proc.wait(timeout=15)


if __name__ == "__main__":
    main()
