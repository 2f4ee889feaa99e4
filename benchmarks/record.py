"""What recording one published post into the archive costs, as the thread's block grows.

The publisher writes the thread's metadata block after every post (atomic rewrite under a lock,
verified), so a thread of n posts pays n writes; if each write costs more than the last, the
thread costs n². This script measures the cost of one write when the block already holds 10,
100, 1000 and 2000 posts on each of the three platforms (a write appends one entry per platform
and moves Bluesky's `pending`, as the publisher's group commit does), then times a whole
`post --dry-run` of a long thread (in-process fakes, recording into a temp copy).

    python benchmarks/record.py [--sizes 10,100,1000,2000] [--window 20] [--dry-run-posts 2105]

Run it from the repository root; it prints numbers only. `--code DIR` measures another checkout
of the package (e.g. the commit before a change) with the same script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tid(n: int) -> str:
    """A valid atproto TID for post n (the model checks the shape)."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    digits = []
    for _ in range(12):
        digits.append(alphabet[n % 32])
        n //= 32
    return "3" + "".join(reversed(digits))


def _entries(i: int) -> dict[str, dict]:
    rkey = _tid(i)
    return {
        "bluesky": {"id": f"at://did:plc:abcdefghijklmnopqrstuvwx/app.bsky.feed.post/{rkey}",
                    "url": f"https://bsky.app/profile/me.example/post/{rkey}",
                    "cid": "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5w5wscpdbyinaaa", "sha": "944aa85014e4"},
        "mastodon": {"id": str(113520001000 + i), "url": f"https://mastodon.example/@me/{113520001000 + i}",
                     "sha": "944aa85014e4"},
        "x": {"id": str(1862000000000000001 + i), "url": f"https://x.com/me/status/{1862000000000000001 + i}",
              "sha": "944aa85014e4"},
    }


def _record(i: int):  # noqa: ANN202 - an update function
    entries = _entries(i)

    def update(meta: dict) -> None:
        for platform, entry in entries.items():
            meta.setdefault(platform, []).append(entry)
        meta["pending"] = {"bluesky": {"index": i + 1, "rkey": _tid(i + 1), "created_at": "2026-12-01T08:00:00.000Z",
                                       "sha": "944aa85014e4"}}
    return update


ARCHIVE_HEAD = "# Threads\n\n## Before\n\nA thread before the long one.\n\n"
ARCHIVE_TAIL = "\n## After\n\nA thread after it.\n"


def _long_thread(posts: int) -> str:
    """Every `###` starts a post: `posts` posts on every platform."""
    body = "\n".join(f"### Part {i + 1}\n\nPost number {i + 1} of the long thread.\n" for i in range(posts))
    return f"## Long\n\n{body}"


def per_write(sizes: list[int], window: int) -> None:
    from crossposter.metadata import update_thread_metadata

    print(f"one write (3 entries + pending) when the block already holds n posts per platform; "
          f"median of {window} writes")
    print(f"{'n':>6}  {'ms/write':>9}  {'file KB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "threads.md"
        path.write_text(ARCHIVE_HEAD + _long_thread(10) + ARCHIVE_TAIL, encoding="utf-8")
        done = 0
        for size in sizes:
            while done < size:  # grow the block to `size` (not timed)
                update_thread_metadata(path, "Long", _record(done))
                done += 1
            times = []
            for _ in range(window):
                t = time.perf_counter()
                update_thread_metadata(path, "Long", _record(done))
                times.append(time.perf_counter() - t)
                done += 1
            print(f"{size:>6}  {statistics.median(times) * 1000:>9.2f}  {path.stat().st_size / 1024:>8.0f}")


def dry_run(posts: int) -> None:
    from crossposter.config import Config
    from crossposter.publish import publish_thread

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "threads.md"
        path.write_text(ARCHIVE_HEAD + _long_thread(posts) + ARCHIVE_TAIL, encoding="utf-8")
        config = Config(state_dir=Path(tmp) / "state", base_dir=Path(tmp))
        config.platforms.x.enabled = True
        config.platforms.bluesky.handle = "me.example"
        t = time.perf_counter()
        result = publish_thread(config, path, "Long", dry_run=True, progress=False)
        wall = time.perf_counter() - t
        counts = {p: o.posted for p, o in result.outcomes.items()}
        print(f"post --dry-run of a {posts}-post thread (3 platforms, fakes): {wall:.1f} s "
              f"({wall / posts * 1000:.1f} ms per post; posted {counts})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000,2000")
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--dry-run-posts", type=int, default=2105, help="0 skips the dry run")
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose crossposter package is measured")
    args = ap.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    import crossposter

    print(f"crossposter from {Path(crossposter.__file__).parent}; python {sys.version.split()[0]}; "
          f"{os.cpu_count()} cores")
    per_write([int(s) for s in args.sizes.split(",")], args.window)
    if args.dry_run_posts:
        dry_run(args.dry_run_posts)


if __name__ == "__main__":
    main()
