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


def timed(cmd: list[str], runs: int, output: bool = True) -> list[float]:
    """Wall times of `runs` runs; a failing run stops the benchmark (a fast crash is no start-up time)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
        out.append(time.perf_counter() - t0)
        if proc.returncode != 0 or (output and not proc.stdout):
            sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return out


def console_script() -> list[str]:
    """The `crossposter` script pip installed beside this interpreter.

    Not whatever `crossposter` is first on PATH: a version manager's shim (pyenv's is a bash
    script that execs pyenv) would add its own ~60 ms to every run.
    """
    script = Path(sys.executable).parent / "crossposter"
    if script.is_file():
        return [str(script)]
    return [shutil.which("crossposter") or sys.exit("crossposter is not installed: pip install -e .")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    preview = [*console_script(), "preview", "threads/", "--format", "json"]
    print(f"timing {' '.join(preview)} (and {sys.executable} -c pass), {args.runs} runs each")
    timed(preview, 2)  # warm the page cache and .pyc files: "cold" means a new process, not a cold disk
    base = timed([sys.executable, "-c", "pass"], args.runs, output=False)
    prev = timed(preview, args.runs)
    print(f"python -c pass:                              median {statistics.median(base):.3f} s, "
          f"min {min(base):.3f} s")
    print(f"crossposter preview threads/ --format json:  median {statistics.median(prev):.3f} s, "
          f"min {min(prev):.3f} s  (target < 0.25 s)")
    print(f"difference (crossposter's own start-up and work): {statistics.median(prev) - statistics.median(base):.3f} s")


if __name__ == "__main__":
    main()
