"""The mirroring run of `benchmarks/daemon.py --mirror`: idle cost of a mirror polling a real PDS, and the
delay from a thread settling to its first post on every target.

A real local PDS (tests/pds, from npm) is the source; the targets are the daemon's journal fakes
(CROSSPOSTER_FAKE_PLATFORMS=1: the backup, the mirror, the engine, the publisher child and the archive
writes are real, only the target platforms are not). Phase 1: the mirror polls every `--every` seconds
with nothing new; the daemon's RSS and CPU are sampled for `--duration` seconds. Phase 2: `--posts`
one-post threads are posted at random moments over `--spread` seconds; for each, the delay from its
settle time (its post's createdAt + settle) to its first post accepted on each target (the journal's
time) is reported. Targets: < 80 MB idle RSS, near-zero idle CPU, p99 delay < 2 s plus one poll interval.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing import pds as local_pds  # noqa: E402


def run(args: Any, rss_mb: Any, cpu_seconds: Any, pct: Any) -> int:
    import requests
    from atproto import Client

    try:
        pds = local_pds.start(timeout=90)
    except (local_pds.Unavailable, local_pds.StartFailed) as e:
        raise SystemExit(f"the local PDS did not start: {e}") from None
    url = pds.server.url
    root = Path(tempfile.mkdtemp(prefix="crossposter-bench-mirror-"))
    proc = None
    try:
        handle = f"bench-{random.randrange(16**6):06x}.test"
        password = "bench-password-" + os.urandom(6).hex()
        r = requests.post(f"{url}/xrpc/com.atproto.server.createAccount", timeout=30,
                          json={"handle": handle, "email": f"{handle}@example.com", "password": password})
        r.raise_for_status()
        did = r.json()["did"]
        client = Client(base_url=url)
        client.login(handle, password, fetch_bsky_profile=False)
        (root / "threads").mkdir()
        (root / "crossposter.yaml").write_text(f"""\
state_dir: state
archives: ['threads/*.md']
platforms:
  bluesky: {{enabled: true, handle: {handle}, service: "{url}"}}
  mastodon: {{enabled: true, instance: "http://127.0.0.1:9"}}
  x: {{enabled: true}}
daemon: {{log_format: json}}
mirror: {{from: bluesky, to: [mastodon, x], every: {args.every}, settle: {args.settle}}}
""")
        env = {**os.environ, "CROSSPOSTER_FAKE_PLATFORMS": "1", "CROSSPOSTER_BLUESKY_PASSWORD": password,
               "CROSSPOSTER_MASTODON_ACCESS_TOKEN": "bench-token-1", "PYTHONPATH": str(ROOT)}
        for name in ("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"):
            env[f"CROSSPOSTER_X_{name}"] = f"bench-x-{name.lower()}"
        log = root / "daemon.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "crossposter", "daemon", "--config",
                                     str(root / "crossposter.yaml")], stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=root)
        state = root / "state" / "mirror-state.json"
        deadline = time.monotonic() + 60
        while not (state.exists() and json.loads(state.read_text()).get("last_poll")):
            if proc.poll() is not None or time.monotonic() > deadline:
                print(log.read_text()[-3000:])
                return 1
            time.sleep(0.1)
        time.sleep(2.0)

        # phase 1: idle, polling every `every` seconds with nothing new
        rss: list[float] = []
        c0, w0 = cpu_seconds(proc.pid), time.monotonic()
        end = w0 + args.duration
        while time.monotonic() < end:
            rss.append(rss_mb(proc.pid))
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        idle_cpu, idle_wall = cpu_seconds(proc.pid) - c0, time.monotonic() - w0
        polls = sum('"event": "mirror_' in line for line in log.read_text().splitlines())

        # phase 2: one-post threads at random moments
        created: dict[str, datetime] = {}
        start = time.monotonic()
        moments = sorted(random.uniform(0, args.spread) for _ in range(args.posts))
        for i, at in enumerate(moments):
            time.sleep(max(0.0, start + at - time.monotonic()))
            text = f"Benchmark thread {i:03d} {os.urandom(3).hex()}"
            ref = client.send_post(text, profile_identify=did, langs=["en"])
            rec = requests.get(f"{url}/xrpc/com.atproto.repo.getRecord", timeout=10, params={
                "repo": did, "collection": "app.bsky.feed.post", "rkey": ref.uri.rsplit("/", 1)[-1]}).json()
            created[text] = datetime.fromisoformat(rec["value"]["createdAt"].replace("Z", "+00:00"))
        journal = root / "state" / "fake-platforms.jsonl"
        deadline = time.monotonic() + args.every + args.settle + 120
        first: dict[tuple[str, str], float] = {}
        while time.monotonic() < deadline:
            if journal.exists():
                for line in journal.read_text().splitlines():
                    e = json.loads(line)
                    key = (e["platform"], e["text"])
                    first[key] = min(first.get(key, e["time"]), e["time"])
            if all((p, t) in first for t in created for p in ("mastodon", "x")):
                break
            time.sleep(0.5)
        busy_rss = rss_mb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        delays = {p: [first[(p, t)] - (c.timestamp() + args.settle) for t, c in created.items() if (p, t) in first]
                  for p in ("mastodon", "x")}
        print(f"mirror benchmark: source a local PDS, targets journal fakes, every {args.every:g} s, "
              f"settle {args.settle:g} s")
        print(f"  idle RSS:        {rss[-1]:.1f} MB (max {max(rss):.1f} MB over {args.duration:.0f} s; target < 80 MB)")
        print(f"  idle CPU:        {idle_cpu:.2f} s over {idle_wall:.1f} s = {100 * idle_cpu / idle_wall:.2f} % of one "
              f"core, {polls} mirror log lines while idle (target: near zero)")
        print(f"  RSS after:       daemon {busy_rss:.1f} MB")
        for p, ds in delays.items():
            if ds:
                print(f"  {p:<8} settle -> first post: p50 {statistics.median(ds):.2f} s, p99 {pct(ds, 99):.2f} s, "
                      f"max {max(ds):.2f} s over {len(ds)}/{len(created)} threads (target p99 < 2 s + "
                      f"{args.every:g} s)")
            else:
                print(f"  {p:<8} nothing published ({len(created)} threads posted)")
        print(f"  exit code on SIGTERM: {rc}")
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        pds.stop()
        if args.keep:
            print(f"  (work dir {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)
