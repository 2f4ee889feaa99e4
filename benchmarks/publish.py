"""Publishing wall time vs. the network floor.

A 10-post thread with 2 images goes to three local servers — the real Bluesky PDS
(tests/pds, installed by .ci/install-pds.sh, started by testing/pds.py), mastodon-mock and the X fake of
testing/xfake.py — each behind testing/proxy.py, which adds 100 ms to every request. The floor is
the longest single platform chain if its requests ran back to back: its request
count × 100 ms. Platforms run concurrently and images are uploaded one post ahead,
so the wall time can approach (or beat) that floor; the target is ≤ 1.2×.

Each proxy also times what happens behind it: for every request, the time from its arrival
to its answer minus the added delay is the server's own service time (plus the proxy's local
forwarding, a fraction of a millisecond). The servers are test stand-ins, so their time is not
the publisher's overhead: a second, clearly labelled floor adds the longest chain's measured
service time to its requests × delay. The issue's floor and ratio are printed unchanged. Inside
the publisher every HTTP request is timed as the client sees it, so the breakdown per chain
shows where its wall time went: waiting for answers, recording in the archive, the rest
(the publisher's own processing between requests).

The proxies answer with TCP_NODELAY: Python's http.server writes headers and body separately,
and with Nagle's algorithm the body then waits ~40 ms for the client's delayed ACK on a
kept-alive connection, so a proxy meant to add 100 ms added ~144 ms per request.

    python benchmarks/publish.py [--delay 0.1] [--posts 10] [--runs 3]

Prints numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing import pds as local_pds  # noqa: E402
from testing.proxy import CountingProxy  # noqa: E402
from testing.xfake import XFakeServer, serve  # noqa: E402


class TimedProxy(CountingProxy):
    """The crash tests' counting proxy without the Nagle stall, timing each request it forwards."""

    def __init__(self, upstream: str, rewrite: list[str] | None = None, delay: float = 0.0,
                 nodelay: bool = True) -> None:
        self.nodelay = nodelay
        #: (arrival, seconds from arrival to answer minus the added delay) per request, in arrival order
        self.timings: list[tuple[float, float]] = []
        super().__init__(upstream, rewrite=rewrite, delay=delay)

    def arm(self, pid: int | None, kill_at: int | None, before: bool = False) -> None:
        super().arm(pid, kill_at, before)
        self.timings = []

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        base = super()._handler()

        class Handler(base):  # type: ignore[valid-type, misc]
            # headers and body are two writes: without this the body waits for a delayed ACK (~40 ms)
            disable_nagle_algorithm = proxy.nodelay

            def _proxy(self) -> None:
                t0 = time.perf_counter()
                delay = proxy.delay
                try:
                    super()._proxy()
                finally:
                    proxy.timings.append((t0, time.perf_counter() - t0 - delay))

        return Handler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_pds() -> local_pds.RunningPDS:
    try:
        return local_pds.start()
    except local_pds.Unavailable as e:
        sys.exit(f"the local PDS is not installed: {e}")
    except local_pds.StartFailed as e:
        sys.exit(f"the PDS did not start: {e}")


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
    state, server = serve()
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
#: Besides the wall time it reports, for the breakdown: every HTTP request as the client saw it
#: (url, thread, start, end), each chain's thread and span, and each thread's time spent recording.
CHILD = """
import json, sys, threading, time
from pathlib import Path
import atproto, mastodon, tweepy  # noqa: F401 - imported before the clock starts
import httpx, requests
import crossposter.metadata as md
import crossposter.publish as pub
from crossposter.config import load_config
from crossposter.reporter import LogReporter

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

calls = []  # (url, thread, start, end)
def timed(send):
    def wrapper(self, request, *a, **k):
        t = time.perf_counter()
        try:
            return send(self, request, *a, **k)
        finally:
            calls.append((str(request.url), threading.current_thread().name, t, time.perf_counter()))
    return wrapper
requests.Session.send = timed(requests.Session.send)
httpx.Client.send = timed(httpx.Client.send)

class Timing(LogReporter):
    # the publisher's own progress events, timed: when each chain ran and how long it waited on the archive

    def start(self, platform, done, total):
        chains[platform] = [threading.current_thread().name, time.perf_counter() - t0, None]
        super().start(platform, done, total)

    def recorded(self, platform, seconds):
        end = time.perf_counter() - t0
        recording.setdefault(threading.current_thread().name, []).append((end - seconds, end))

    def chain_ended(self, outcome):
        chains[outcome.platform][2] = time.perf_counter() - t0

recording = {}  # thread -> [(start, end)] a chain waited for its posts to be recorded (group commit included)
chains = {}  # platform -> [thread, start, end]

if sys.argv[4] == "True":
    import logging
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)7.0f ms %(threadName)-14s %(message)s")
config = load_config(sys.argv[1])
if sys.argv[5] == "True":
    pub.warm_up(config.enabled_platforms())  # what a publisher process started ahead of the thread does
t0 = time.perf_counter()
result = pub.publish_thread(config, Path(sys.argv[2]), "Benchmark thread", reporter=Timing(),
                            upload_ahead=sys.argv[3] == "True")
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "ok": result.ok, "totals": {p: o.total for p, o in result.outcomes.items()},
                  "outcomes": {p: [o.state, o.message] for p, o in result.outcomes.items()},
                  "writes": f"{writes} ({write_s:.2f} s)", "chains": chains, "recording": recording,
                  "calls": [(u, n, a - t0, b - t0) for u, n, a, b in calls]}))
"""


@dataclass
class Breakdown:
    """Where one platform's chain spent the wall time of one run (seconds)."""

    requests: int = 0
    server: float = 0.0      # measured at the proxy: arrival to answer minus the added delay
    before_chain: float = 0.0  # pre-flight, log-in, image preparation: until the chain's first post
    chain: float = 0.0       # the chain thread's own span
    waiting: float = 0.0     # of which: a request of this platform in flight (delay + server + client I/O)
    recording: float = 0.0   # of which: recording its posts in the archive, no request in flight
    in_chain: int = 0        # requests the chain thread made itself (uploads ahead run in another thread)

    @property
    def other(self) -> float:
        """The publisher's own work between requests in the chain thread (SDK, JSON, signing, GIL waits)."""
        return self.chain - self.waiting - self.recording


def breakdown(out: dict, proxies: dict[str, TimedProxy]) -> dict[str, Breakdown]:
    result: dict[str, Breakdown] = {}
    for p, proxy in proxies.items():
        b = Breakdown(requests=proxy.count, server=sum(s for _, s in proxy.timings))
        thread, start, end = out["chains"].get(p, ["?", 0.0, 0.0])
        end = start if end is None else end  # a platform that never ran a chain (its thread was changed)
        b.before_chain, b.chain = start, end - start
        mine = [(a, z, name) for url, name, a, z in out["calls"] if url.startswith(proxy.url)]
        b.in_chain = sum(1 for *_, name in mine if name == thread)
        requests_in_flight = [(a, z) for a, z, _ in mine]
        b.waiting = _covered(requests_in_flight, start, end)
        b.recording = _covered(requests_in_flight + [tuple(x) for x in out["recording"].get(thread, [])],
                               start, end) - b.waiting
        result[p] = b
    return result


def _covered(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of the intervals within [lo, hi]."""
    total, reach = 0.0, lo
    for a, z in sorted(intervals):
        a, z = max(a, reach), min(z, hi)
        if z > a:
            total += z - a
            reach = z
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay", type=float, default=0.1, help="seconds each proxy adds per request")
    ap.add_argument("--posts", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--trace", action="store_true", help="print the publisher's timestamped log of each run")
    ap.add_argument("--cold", action="store_true",
                    help="do not call publish.warm_up before the clock (a one-shot `crossposter post`)")
    ap.add_argument("--nagle", action="store_true",
                    help="leave Nagle's algorithm on in the proxies, as before (adds a ~40 ms stall per request)")
    args = ap.parse_args()

    pds = start_pds()
    pds_url = pds.server.url
    masto_proc, masto_url = start_mastodon()
    x_srv, x_state = start_x()
    port = pds_url.rsplit(":", 1)[-1]
    proxies = {
        "bluesky": TimedProxy(pds_url, rewrite=[pds_url, f"http://localhost:{port}"], delay=args.delay,
                              nodelay=not args.nagle),
        "mastodon": TimedProxy(masto_url, delay=args.delay, nodelay=not args.nagle),
        "x": TimedProxy(x_state.url, delay=args.delay, nodelay=not args.nagle),
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
        print("SDK clients warmed before the clock (publish.warm_up)" if not args.cold else
              "no warm-up beyond the SDK imports (--cold)")
        print(f"proxies: TCP_NODELAY {'off (Nagle on, as before)' if args.nagle else 'on'}")
        print(f"{'mode':<14}{'delay':>6}{'run':>4}{'wall s':>9}{'floor s':>9}{'ratio':>7}   requests b/m/x"
              "   requests per post   archive writes   longest chain: before | in chain = requests in flight + "
              "recording + own work; server ms/request; every chain's end s b/m/x")
        state = Path(tempfile.mkdtemp(prefix="bench-state-"))
        walls: dict[tuple[bool, float], list[float]] = {}
        floors: list[float] = []
        service_floors: list[float] = []
        parts: dict[tuple[bool, float], list[dict[str, Breakdown]]] = {}
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
                                            str(archive), str(upload_ahead), str(args.trace),
                                            str(not args.cold)],
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
                    parts_run = breakdown(out, proxies)
                    longest = max(proxies, key=lambda p: (counts[p], parts_run[p].chain))
                    b = parts_run[longest]
                    if run > 1:  # the first run of a mode pays for the Bluesky login / warm-up
                        walls.setdefault((upload_ahead, delay), []).append(wall)
                        parts.setdefault((upload_ahead, delay), []).append(parts_run)
                        if delay:
                            floors.append(floor)
                            service_floors.append(max(counts[p] * args.delay + parts_run[p].server for p in proxies))
                    per_post = "/".join(f"{counts[p] / out['totals'][p]:.2f}" for p in proxies)
                    ratio = f"{wall / floor:>7.2f}" if delay else f"{'-':>7}"
                    print(f"{'upload ahead' if upload_ahead else 'sequential':<14}{delay * 1000:>4.0f}ms{run:>4}"
                          f"{wall:>9.2f}{floor:>9.2f}{ratio}   {counts['bluesky']}/{counts['mastodon']}/{counts['x']}"
                          f"{'':>8}{per_post:<20}{out['writes']:<17}{longest}: {b.before_chain:.2f} | "
                          f"{b.chain:.2f} = {b.waiting:.2f} + {b.recording:.2f} + {b.other:.2f}; "
                          f"{1000 * b.server / max(b.requests, 1):.1f}; "
                          + "/".join(f"{parts_run[p].before_chain + parts_run[p].chain:.2f}" for p in proxies))
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
                for delay in (0.0, args.delay):
                    runs_parts = parts.get((upload_ahead, delay), [])
                    for p in proxies:
                        bs = [r[p] for r in runs_parts]
                        if not bs:
                            continue
                        med = {k: statistics.median(getattr(x, k) for x in bs)
                               for k in ("before_chain", "chain", "waiting", "recording", "other", "server")}
                        n = statistics.median(x.requests for x in bs)
                        print(f"    +{delay * 1000:.0f} ms {p:<9}({n:.0f} requests): {med['before_chain']:.2f} s before "
                              f"its first post, then {med['chain']:.2f} s = requests in flight {med['waiting']:.2f} s + "
                              f"recording {med['recording']:.2f} s + own work {med['other']:.2f} s; ends at "
                              f"{med['before_chain'] + med['chain']:.2f} s; server's own time "
                              f"{1000 * med['server'] / n:.1f} ms/request")
            service_floor = statistics.median(service_floors)
            print(f"  floor including the servers' measured service time (not the issue's floor): "
                  f"{service_floor:.2f} s; upload-ahead wall = "
                  f"{statistics.median(walls.get((True, args.delay), [0.0])) / service_floor:.2f}x that")
        shutil.rmtree(state, ignore_errors=True)
    finally:
        for p in proxies.values():
            p.close()
        x_srv.shutdown()
        masto_proc.terminate()
        pds.stop()
        masto_proc.wait(timeout=10)


if __name__ == "__main__":
    main()
