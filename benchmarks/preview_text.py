"""Speed of the terminal preview (`crossposter preview`, text format): what a person waits for.

Two numbers: the whole command on the bundled example and on the seed archive (a new process each run,
as a person runs it, COLUMNS=100, output to a pipe), and the drawing alone (planning excluded) of a
generated archive's posts into a file at 100 columns, so a slower layout shows up clearly.
Run from the repository root: python benchmarks/preview_text.py [--runs 9] [--mb 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def command_times(args: list[str], runs: int) -> list[float]:
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "crossposter", "preview", *args]
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)  # warm .pyc files
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)
        out.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1) or not proc.stdout:
            sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--mb", type=float, default=0.5, help="size of the generated archive drawn in-process")
    args = ap.parse_args()

    from pipeline import generate

    from crossposter.plan import PlanOptions, plan_paths
    from crossposter.preview_text import print_plans

    seed = ROOT.parent.parent / "shared" / "seed" / "tweets.md"
    seed = seed if seed.is_file() else Path("/work/shared/seed/tweets.md")
    for label, cmd_args in (("threads/ (bundled example)", ["threads/"]), (f"seed {seed.name}", [str(seed)])):
        t = command_times(cmd_args, args.runs)
        print(f"crossposter preview {label:28} median {statistics.median(t):.3f} s, min {min(t):.3f} s "
              f"({args.runs} runs)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.md"
        path.write_text(generate(int(args.mb * 1_000_000)), encoding="utf-8")
        plans = plan_paths([path], PlanOptions(decode_images=False), None, None)
        posts = sum(len(pp.posts) for p in plans for pp in p.platforms.values())
        best = []
        for _ in range(3):
            t0 = time.perf_counter()
            print_plans(plans, Path(tmp) / "out.txt")
            best.append(time.perf_counter() - t0)
        lines = (Path(tmp) / "out.txt").read_text(encoding="utf-8").count("\n")
    print(f"drawing {len(plans)} threads, {posts} posts ({lines} lines at 100 columns): best {min(best):.3f} s, "
          f"{min(best) / posts * 1e6:.0f} µs a post")


if __name__ == "__main__":
    main()
