"""Parse + render + split of a generated multi-megabyte archive, next to markdown-it-py's bare parse.

Target (issue 2): the whole pipeline for all three platforms within 3x the bare parse.
Run: python benchmarks/pipeline.py [--mb 3]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ("the model routing expert latency compiler hardware dataset quantization attention scaling "
         "Würstchen naïve 日本語 🧵 GPU TPU (aka LPU) e.g. 25K -> (!) training inference tokens").split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(5, 22))]
    if rng.random() < 0.15:
        words.append(f"https://example.com/{rng.randint(1, 10**6)}/paper")
    if rng.random() < 0.1:
        words.insert(2, f"[a link](https://arxiv.org/abs/{rng.randint(1000, 9999)}.{rng.randint(10000, 99999)})")
    s = " ".join(words)
    return s[0].upper() + s[1:] + rng.choice([".", ".", "?", "!", ","])


def generate(size_bytes: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    out = ["# Generated archive\n\nNot a thread.\n"]
    n = 0
    total = 0
    while total < size_bytes:
        n += 1
        part = [f"\n## Thread {n}\n\n2024-02-{rng.randint(10, 28)} 12:00\n\n"]
        part.append(" ".join(sentence(rng) for _ in range(rng.randint(1, 4))) + "\n")
        for k in range(rng.randint(1, 6)):
            part.append(f"\n### Part {k}\n")
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.3:
                    part.append("".join(f"- {sentence(rng)}\n" for _ in range(rng.randint(2, 5))))
                else:
                    part.append("\n".join(sentence(rng) for _ in range(rng.randint(1, 5))) + "\n")
                part.append("\n")
        chunk = "".join(part)
        out.append(chunk)
        total += len(chunk.encode())
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=float, default=3.0, help="archive size in MB")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from markdown_it import MarkdownIt

    from crossposter.archive import read_archive
    from crossposter.config import default_config
    from crossposter.plan import plan_thread

    text = generate(int(args.mb * 1_000_000))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.md"
        path.write_text(text, encoding="utf-8")
        size = path.stat().st_size
        config = default_config()

        # Bare parse and pipeline alternate, so that load from other processes on this shared machine
        # falls on both alike; best of each, plus the median of the pairs' ratios.
        bare = []
        bare_no_gc = []
        full = []
        posts = 0
        threads = 0
        for _ in range(args.repeat):
            md = MarkdownIt("commonmark")
            t0 = time.perf_counter()
            md.parse(text)
            bare.append(time.perf_counter() - t0)
            del md
            md = MarkdownIt("commonmark")
            gc.disable()  # as crossposter's read does during its block parse: the fairest comparison too
            t0 = time.perf_counter()
            md.parse(text)
            bare_no_gc.append(time.perf_counter() - t0)
            gc.enable()
            del md
            t0 = time.perf_counter()
            archive = read_archive(path)
            posts = 0
            threads = 0
            for thread in archive.threads:
                plan = plan_thread(archive, thread, config)
                threads += 1
                posts += sum(len(pp.posts) for pp in plan.platforms.values())
            full.append(time.perf_counter() - t0)
            del archive, plan

        stages = _stages(path, config, args.repeat)

    b, f = min(bare), min(full)
    pairs = sorted(x / y for x, y in zip(full, bare, strict=True))
    print(f"archive: {size / 1e6:.2f} MB, {threads} threads, {posts} posts over 3 platforms")
    print(f"markdown-it-py parse alone:                 {b:7.3f} s (best of {args.repeat})")
    print(f"read + render + split, bluesky+mastodon+x:  {f:7.3f} s (best of {args.repeat})")
    print(f"ratio: {f / b:.2f}x the bare parse (target <= 3x); median of the {args.repeat} paired runs "
          f"{pairs[len(pairs) // 2]:.2f}x")
    g = min(bare_no_gc)
    print(f"markdown-it-py parse alone, cyclic GC paused (as crossposter's block parse runs): {g:.3f} s; "
          f"ratio against it {f / g:.2f}x")
    print("stages (separate timed runs, best of each): " + ", ".join(f"{k} {v:.3f} s" for k, v in stages.items()))


def _stages(path: Path, config, repeat: int) -> dict[str, float]:
    """Where the pipeline's time goes: the same work as plan_thread, timed stage by stage."""
    from crossposter.archive import read_archive
    from crossposter.model import PLATFORMS
    from crossposter.plan import PlanOptions
    from crossposter.render import blocks, has_opening_text, tokenize_streams
    from crossposter.split import split

    options = PlanOptions.of(config)
    best: dict[str, float] = {}
    for _ in range(repeat):
        took = dict.fromkeys(["read", "body tokens", "blocks + inline", "tokenize", *PLATFORMS], 0.0)
        t0 = time.perf_counter()
        archive = read_archive(path)
        took["read"] = time.perf_counter() - t0
        for thread in archive.threads:
            if thread.skipped:
                continue
            t0 = time.perf_counter()
            tokens = archive.body_tokens(thread, inline=False)
            t1 = time.perf_counter()
            title = thread.title if options.post_title or not has_opening_text(tokens) else None
            rendered = blocks(thread.body, thread.body_line, archive.path.parent, title=title,
                              title_line=thread.line, tokens=tokens, inline=archive.inline_children)
            t2 = time.perf_counter()
            streams = tokenize_streams(rendered, list(PLATFORMS))
            t3 = time.perf_counter()
            took["body tokens"] += t1 - t0
            took["blocks + inline"] += t2 - t1
            took["tokenize"] += t3 - t2
            for name in PLATFORMS:
                t4 = time.perf_counter()
                split(streams[name], name, options.limits[name], numbering=options.numbering)
                took[name] += time.perf_counter() - t4
        for k, v in took.items():
            best[k] = min(best.get(k, v), v)
    return best


if __name__ == "__main__":
    main()
