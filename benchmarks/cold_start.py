"""Cold start of `crossposter preview threads/ --format json` next to `python -c pass`.

Target (issue 2): under 0.25 s on the 2-core machine. Run from the repository root:
python benchmarks/cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    exe = shutil.which("crossposter")
    preview = [exe] if exe else [sys.executable, "-m", "crossposter"]
    preview += ["preview", "threads/", "--format", "json"]
    timed(preview, 2)  # warm the page cache and .pyc files: "cold" means a new process, not a cold disk
    base = timed([sys.executable, "-c", "pass"], args.runs)
    prev = timed(preview, args.runs)
    print(f"python -c pass:                              median {statistics.median(base):.3f} s, "
          f"min {min(base):.3f} s")
    print(f"crossposter preview threads/ --format json:  median {statistics.median(prev):.3f} s, "
          f"min {min(prev):.3f} s  (target < 0.25 s)")
    print(f"difference (crossposter's own start-up and work): {statistics.median(prev) - statistics.median(base):.3f} s")


if __name__ == "__main__":
    main()
