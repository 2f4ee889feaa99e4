"""How fast `crossposter.counting` is: import cost, and µs per `length()` call per platform.

The splitter calls `length()` many times per paragraph, so what matters is the cost on post-sized text
(280 characters) and on Bluesky's byte-cap-sized text (3000 characters), for plain Latin prose, prose with
links, and text in other scripts with emoji. Run: `python benchmarks/counting.py` (prints, asserts nothing).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "the archive stays the source of truth while crossposter splits each thread into posts for every "
    "platform, counts them by its own rule and records what it published. e.g. version 3.5 is out"
).split()


def _prose(rng: random.Random, n: int) -> str:
    out: list[str] = []
    while sum(len(w) + 1 for w in out) < n:
        out.append(rng.choice(WORDS))
    return " ".join(out)[:n]


def _with_links(rng: random.Random, n: int) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < n:
        parts.append(_prose(rng, 60))
        parts.append(
            rng.choice(["https://example.com/docs/archive-format?lang=en", "bsky.app", "docs.python.org/3/"])
        )
    return " ".join(parts)[:n]


def _other_scripts(rng: random.Random, n: int) -> str:
    pieces = [
        "Grüße aus Köln",
        "👋🏽",
        "日本語のテキストです。",
        "—",
        "Ελληνικά",
        "👨‍👩‍👧‍👦",
        "naïve café",
        "한국어",
    ]
    out: list[str] = []
    while sum(len(p) + 1 for p in out) < n:
        out.append(rng.choice(pieces))
    return " ".join(out)[:n]


SAMPLES: dict[str, Callable[[random.Random, int], str]] = {
    "latin prose": _prose,
    "prose + links": _with_links,
    "scripts + emoji": _other_scripts,
}


def import_time_ms(runs: int = 7) -> tuple[float, float]:
    """Median wall time of `python -c pass` and of `python -c "import crossposter.counting"`, in ms."""

    def run(code: str) -> float:
        times = []
        for _ in range(runs):
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import time; t=time.perf_counter(); {code}; print(time.perf_counter()-t)",
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            times.append(float(out.stdout) * 1000)
        return statistics.median(times)

    return run("pass"), run("import crossposter.counting")


def main() -> None:
    from crossposter.counting import length

    rng = random.Random(2026)
    print(f"{'text':16} {'chars':>5}  {'bluesky':>9} {'mastodon':>9} {'x':>9}   (µs per length() call)")
    for name, make in SAMPLES.items():
        for n in (280, 3000):
            text = make(rng, n)
            row = []
            for platform in ("bluesky", "mastodon", "x"):
                length(platform, text)  # first call compiles the lazy patterns: not what the splitter sees
                number = 2000 if n == 280 else 200
                best = min(timeit.repeat(lambda p=platform, t=text: length(p, t), number=number, repeat=5))
                row.append(best / number * 1e6)
            print(f"{name:16} {n:5}  " + " ".join(f"{us:9.1f}" for us in row))
    base, counting = import_time_ms()
    print(
        f"\nimport crossposter.counting: {counting:.2f} ms inside a fresh interpreter "
        f"(the statement `pass` alone: {base:.2f} ms)"
    )
    print(
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} (when set, every import compiles)"
    )


if __name__ == "__main__":
    main()
