"""Benchmark the daemon: idle memory and CPU with 1,000 scheduled threads, and start delays.

    python benchmarks/daemon.py [--duration 60] [--threads 1000] [--due 20] [--spacing 2] [--archives 10]
    python benchmarks/daemon.py --mirror [--duration 60] [--every 60] [--settle 5] [--posts 20] [--spread 120]

Runs `python -m crossposter daemon` as a real subprocess on journal fakes
(CROSSPOSTER_FAKE_PLATFORMS=1: no network; the engine, APScheduler, the archive watcher, the
publisher and the metadata writes are all real). `--threads` threads are scheduled across
the coming week, spread over `--archives` files. Phase 1 (idle): for `--duration` seconds no
thread is due (nor within the publisher process's prewarm minute, so only the daemon runs); resident memory (VmRSS from /proc) and CPU time (utime+stime of every thread
of the process) are sampled. Phase 2: `--due` of those threads fall due `--spacing` seconds
apart; the delay between each one's scheduled time and the daemon starting it (its
`publish_start` log event) and its first post being accepted (the fake's journal) is
reported as p50/p99/max. Targets: < 80 MB RSS, near-zero idle CPU, p99 start delay < 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    """Child processes of `pid` (scanning /proc: /proc/PID/task/*/children needs a kernel option)."""
    out: list[int] = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime, stime (all threads)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def build(root: Path, n_threads: int, n_archives: int, due: list[datetime], horizon: datetime) -> None:
    (root / "threads").mkdir(parents=True)
    start = horizon
    week = timedelta(days=7)
    per_file: list[list[str]] = [[] for _ in range(n_archives)]
    rest = n_threads - len(due)
    for i in range(n_threads):
        when = due[i] if i < len(due) else start + week * ((i - len(due) + 1) / (rest + 1))
        title = f"Thread {i:04d}"
        body = (f"Opening post of thread {i}, with a link https://example.com/{i} and a #tag.\n\n"
                f"### Two\n\nSecond post of thread {i}.\n")
        per_file[i % n_archives].append(
            f"## {title}\n<!-- crossposter\nschedule: {when.isoformat(timespec='seconds')}\n-->\n\n{body}\n")
    for k, threads in enumerate(per_file):
        (root / "threads" / f"archive{k:02d}.md").write_text(f"# Archive {k}\n\n" + "".join(threads),
                                                             encoding="utf-8")
    (root / "crossposter.yaml").write_text(
        "timezone: Europe/Berlin\nstate_dir: state\narchives: ['threads/*.md']\n"
        "platforms: {bluesky: {handle: bench.test}}\n"
        "daemon: {log_format: json, heartbeat_interval: 30, watch_interval: 1.0}\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="idle measurement, seconds (default 60)")
    ap.add_argument("--threads", type=int, default=1000)
    ap.add_argument("--archives", type=int, default=10)
    ap.add_argument("--due", type=int, default=20, help="threads falling due after the idle phase")
    ap.add_argument("--spacing", type=float, default=2.0, help="seconds between due threads")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (archives, logs, journal)")
    ap.add_argument("--mirror", action="store_true",
                    help="the mirroring run instead (benchmarks/daemon_mirror.py): a local PDS as the source")
    ap.add_argument("--every", type=float, default=60.0, help="mirror: poll interval, seconds (default 60)")
    ap.add_argument("--settle", type=float, default=5.0, help="mirror: settle time, seconds (default 5)")
    ap.add_argument("--posts", type=int, default=20, help="mirror: threads posted in the second phase")
    ap.add_argument("--spread", type=float, default=120.0, help="mirror: seconds they are posted over")
    args = ap.parse_args()
    if args.mirror:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from daemon_mirror import run

        return run(args, rss_mb, cpu_seconds, pct)

    root = Path(tempfile.mkdtemp(prefix="crossposter-bench-"))
    t0 = datetime.now(UTC).replace(microsecond=0)
    startup_allowance = 15.0
    # The idle phase must end before the publisher process is prewarmed for the first due thread.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's package
    from crossposter.daemon.child import PREWARM

    first_due = t0 + timedelta(seconds=startup_allowance + args.duration + PREWARM + 5)
    due = [first_due + timedelta(seconds=args.spacing * i) for i in range(args.due)]
    horizon = due[-1] + timedelta(minutes=5) if due else first_due + timedelta(minutes=5)
    build(root, args.threads, args.archives, due, horizon)

    env = {**os.environ, "CROSSPOSTER_FAKE_PLATFORMS": "1", "CROSSPOSTER_BLUESKY_PASSWORD": "bench-password-1",
           "CROSSPOSTER_MASTODON_ACCESS_TOKEN": "bench-token-1",
           # the code of this checkout, whatever `pip install -e` points at
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    env.pop("CROSSPOSTER_FAKE_DELAY", None)
    log_path = root / "daemon.log"
    started = time.monotonic()
    with log_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "crossposter", "daemon", "--config",
                                 str(root / "crossposter.yaml")], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=root)

    def events() -> list[dict]:
        evs = []
        for line in log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                evs.append(json.loads(line))
        return evs

    try:
        while not any(e.get("event") == "started" for e in events()):
            if proc.poll() is not None or time.monotonic() - started > startup_allowance:
                print(log_path.read_text()[-3000:])
                print("daemon did not start in time")
                return 1
            time.sleep(0.05)
        startup = time.monotonic() - started
        start_msg = next(e for e in events() if e.get("event") == "started")["msg"]
        time.sleep(2.0)  # let start-up allocations settle

        # phase 1: idle (nothing due within the publisher's prewarm window: no child process)
        rss: list[float] = []
        idle_children: set[int] = set()
        c0, w0 = cpu_seconds(proc.pid), time.monotonic()
        end = w0 + args.duration
        while time.monotonic() < end:
            rss.append(rss_mb(proc.pid))
            idle_children.update(children(proc.pid))
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        c1, w1 = cpu_seconds(proc.pid), time.monotonic()
        idle_cpu = c1 - c0
        idle_rss = rss[-1]

        # phase 2: due threads
        wait_until = (due[-1] - datetime.now(UTC)).total_seconds() + 5 if due else 0
        deadline = time.monotonic() + max(0.0, wait_until) + 30
        child_rss = 0.0
        while time.monotonic() < deadline:
            for c in children(proc.pid):
                with contextlib.suppress(OSError):
                    child_rss = max(child_rss, rss_mb(c))
            if sum(e.get("event") == "published" for e in events()) >= len(due):
                break
            time.sleep(0.2)
        busy_rss = rss_mb(proc.pid)
        proc.terminate()
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()

    evs = events()
    starts = [e["delay"] for e in evs if e.get("event") == "publish_start"]
    due_by_title = {f"Thread {i:04d}": d for i, d in enumerate(due)}
    first_post: dict[str, float] = {}
    journal = root / "state" / "fake-platforms.jsonl"
    if journal.exists():
        for line in journal.read_text().splitlines():
            e = json.loads(line)
            title = e["thread_key"].split("::", 1)[1]
            first_post[title] = min(first_post.get(title, e["time"]), e["time"])
    post_delays = [first_post[t] - d.timestamp() for t, d in due_by_title.items() if t in first_post]
    published = sum(e.get("event") == "published" for e in evs)

    print(f"daemon benchmark: {args.threads} threads in {args.archives} archives, scheduled across a week")
    print(f"  start-up:                {startup:.2f} s  ({start_msg})")
    print(f"  idle RSS:                {idle_rss:.1f} MB (max {max(rss):.1f} MB over {args.duration:.0f} s; "
          "target < 80 MB)")
    print(f"  idle CPU:                {idle_cpu:.2f} s over {w1 - w0:.1f} s = {100 * idle_cpu / (w1 - w0):.2f} % "
          "of one core (target: near zero)")
    print(f"  child processes while idle: {len(idle_children)}")
    print(f"  RSS after publishing:    daemon {busy_rss:.1f} MB; publisher child (SDKs loaded) peak "
          f"{child_rss:.1f} MB while threads were due")
    print(f"  threads due in the run:  {len(due)}, published {published}")
    if starts:
        print(f"  start delay (scheduled -> publish_start): p50 {1000 * statistics.median(starts):.1f} ms, "
              f"p99 {1000 * pct(starts, 99):.1f} ms, max {1000 * max(starts):.1f} ms (target p99 < 1 s)")
    if post_delays:
        print(f"  first post accepted after scheduled time:  p50 {1000 * statistics.median(post_delays):.1f} ms, "
              f"p99 {1000 * pct(post_delays, 99):.1f} ms, max {1000 * max(post_delays):.1f} ms")
    print(f"  exit code on SIGTERM:    {rc}")
    if args.keep:
        print(f"  (work dir {root})")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
