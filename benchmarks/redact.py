"""Cost of the redaction every log line, error and state-file message goes through.

Two things matter: an ordinary log line must cost microseconds (the daemon and `post` redact
every record), and a hostile server's answer (a long run of backslashes, of `%25`, of
`Authorization:` headers, of base64) must cost time linear in its length, never quadratic
(a 100 KB body once took 270 s through the bearer-token pattern). Each hostile case is timed
at two sizes; the ratio should stay near 2 (4 would be quadratic).

Run from the repository root: python benchmarks/redact.py
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossposter.redact import Redactor  # noqa: E402 - after the path setup above

SECRETS = ["SEKRIT-bsky/pw+1=é\"q'\\z", "SEKRIT-masto/tok+2=\"q'\\z", "SEKRIT-xck/3+=ü'\"\\k", "SEKRIT-xcs/4+é",
           "SEKRIT-xat/5+é", "SEKRIT-xats/6="]
LINE = "2026-01-01 12:00:00 INFO crossposter.publish: mastodon: posted 3/5 https://mastodon.social/@me/113520001\n"

HOSTILE: dict[str, Callable[[int], str]] = {
    "backslashes after a secret's letters": lambda n: "SEKRIT" + "\\" * n,
    "Bearer + backslashes": lambda n: "Bearer " + "a\\" * (n // 2),
    "%25 runs": lambda n: "SEKRIT" + "%25" * (n // 3),
    "Authorization: headers": lambda n: 'authorization: "' * (n // 16),
    "OAuth parameter lists": lambda n: 'OAuth oauth_x="a", ' * (n // 19),
    "base64 of the secret, repeated": lambda n: (base64.b64encode(SECRETS[0].encode()).decode() + " ") * (n // 37),
}


def best(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    t0 = time.perf_counter()
    r = Redactor(SECRETS)
    r.redact("warm")
    print(f"building the patterns for {len(SECRETS)} secrets: {(time.perf_counter() - t0) * 1000:.1f} ms (once)")
    per_line = best(lambda: [r.redact(LINE) for _ in range(10_000)]) / 10_000
    print(f"an ordinary log line: {per_line * 1e6:.1f} µs")
    leaky = LINE + " ".join(SECRETS) + "\n"
    print(f"a line holding all six secrets: {best(lambda: r.redact(leaky)) * 1e6:.1f} µs")
    text = LINE * 10_000
    print(f"1 MB of ordinary log text: {best(lambda: r.redact(text), 3) * 1000:.1f} ms")
    print("hostile answers (time at 100 KB, at 200 KB, ratio):")
    for name, make in HOSTILE.items():
        small, large = make(100_000), make(200_000)
        a, b = best(lambda s=small: r.redact(s), 3), best(lambda s=large: r.redact(s), 3)
        print(f"  {name:34} {a * 1000:7.1f} ms {b * 1000:7.1f} ms  x{b / a:.1f}")


if __name__ == "__main__":
    main()
