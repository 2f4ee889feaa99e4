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
import time
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


def _median_wall_ms(code: str, runs: int = 7) -> float:
    """Median wall time of a fresh `python -c code`, in ms (interpreter start-up included)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


FIRST_USE = (
    "import time; t=time.perf_counter(); import crossposter.counting as c; t1=time.perf_counter(); "
    "[c.length(p, 'Grüße 👋🏽 日本語 https://example.com/a?b=1 @me@example.social') for p in ('bluesky','mastodon','x')]; "
    "t2=time.perf_counter(); print(f'{(t1-t)*1000:.2f} {(t2-t1)*1000:.2f}')"
)


def first_use_ms(runs: int = 7) -> tuple[float, float]:
    """In a fresh interpreter: (import time, first calls on all platforms with non-ASCII text and a URL).

    The first calls import `regex` and compile the lazy patterns; that is what a preview pays once.
    """
    imports, firsts = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", FIRST_USE],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stdout.split()
        imports.append(float(out[0]))
        firsts.append(float(out[1]))
    return statistics.median(imports), statistics.median(firsts)


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
    base = _median_wall_ms("pass")
    with_import = _median_wall_ms("import crossposter.counting")
    inside, first = first_use_ms()
    print(
        f"\npython -c pass: {base:.1f} ms wall; python -c 'import crossposter.counting': {with_import:.1f} ms wall"
        f"\nimport measured inside the interpreter: {inside:.2f} ms; first length() calls on the three platforms"
        f" (imports regex, compiles the lazy patterns): {first:.1f} ms"
    )
    print(
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} (when set, every import compiles)"
    )


if __name__ == "__main__":
    main()
