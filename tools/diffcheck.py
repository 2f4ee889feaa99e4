"""Differential check: plans from this tree against plans from an older commit, byte for byte.

A speed change to archive/render/split/counting/plan must not change a single post. This runs both
implementations (each in its own process, importing its own `crossposter` package) over the seed archive,
the bundled example, a generated multi-megabyte archive and thousands of random Markdown archives (lists,
nested lists, quotes, code, links, bare URLs, CJK, emoji, long words, headings, numbering on and off, small
limits that force cuts inside paragraphs), and compares every post's text, length, facets, images, links and
line, and every error and warning, for all three platforms.

Run:  python tools/diffcheck.py --old-commit dc89017 [--cases 3000] [--seed 1] [--mb 3] [--dump FILE]
      (or --old DIR: a folder holding an old `crossposter` package)
Prints the number of cases compared and exits 1 on the first few differences (shown). For a deliberate
output change, `--dump FILE` writes every differing case (input, options, both plans) as JSON, so that
each class of difference can be explained.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ("bluesky", "mastodon", "x")

# --------------------------------------------------------------------------- random archives

_WORDS = ("the a model routing expert latency compiler hardware dataset quantization attention scaling "
          "Würstchen naïve café e.g. i.e. vs. J. Smith Dr. 25K -> (!) training inference tokens — ok; yes: "
          "no, 3.5 file.txt example.com www.example.org/path t.co/abc").split()
_CJK = ["日本語の文章です。", "中文，测试！", "これはテスト？", "「引用」です。", "한국어 문장", "ｆｕｌｌ　ｗｉｄｔｈ",
        "漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字", "カタカナ、ひらがな。"]
_EMOJI = ["🧵", "👍🏽", "👨‍👩‍👧", "🇯🇵", "❤️", "e\u0301", "1️⃣", "🏳️‍🌈", "a\u200db", "\u0915\u094d\u0937"]
_URLS = ["https://example.com/", "https://arxiv.org/abs/2401.12345", "http://x.org/a_b?c=d&e=f#frag",
         "https://en.wikipedia.org/wiki/Foo_(bar)", "https://example.com/" + "long" * 30,
         "https://bsky.app/profile/me.bsky.social/post/3l", "https://t.co/abcdef", "https://例え.jp/パス"]
_TAGS = ["#tag", "#日本", "#a1", "#123", "#" + "x" * 70, "@alice.bsky.social", "@bob@mastodon.social",
         "user@example.com", "@me"]


def _word(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return rng.choice(_WORDS)
    if r < 0.65:
        return rng.choice(_CJK)
    if r < 0.72:
        return rng.choice(_EMOJI)
    if r < 0.78:
        return rng.choice(_URLS)
    if r < 0.84:
        return rng.choice(_TAGS)
    if r < 0.87:
        return "x" * rng.randint(15, 90)  # long words (some longer than a small limit)
    if r < 0.90:
        return f"[{rng.choice(_WORDS)} {rng.choice(_WORDS)}]({rng.choice(_URLS)})"
    if r < 0.92:
        return f"<{rng.choice(_URLS)}>"
    if r < 0.94:
        return rng.choice(["*em*", "_em_", "**strong**", "`code()`", "\\*", "&amp;", "<b>x</b>", "~~s~~", "*open"])
    if r < 0.95:
        return f"![{rng.choice(['an image', '', 'alt text'])}](img{rng.randint(1, 3)}.png)"
    if r < 0.96:
        return "[ref link][r1]"
    return rng.choice([".", ",", ":", "!", "?", "…", "”", "(aside)"])


def _sentence(rng: random.Random) -> str:
    words = [_word(rng) for _ in range(rng.randint(1, 14))]
    seps = [rng.choice([" ", " ", " ", "  ", "\t", "\u3000"]) if rng.random() < 0.1 else " " for _ in words]
    text = "".join(s + w for s, w in zip(seps, words, strict=True)).lstrip()
    return text + rng.choice(["", ".", ".", "?", "!", ":", ","])


def _paragraph(rng: random.Random) -> str:
    lines = [_sentence(rng) for _ in range(rng.randint(1, 4))]
    out = lines[0]
    for line in lines[1:]:
        out += rng.choice(["\n", "\n", "  \n", " \n", "\\\n", " "]) + line
    return out


def _list(rng: random.Random, depth: int = 0) -> str:
    ordered = rng.random() < 0.4
    start = rng.choice([1, 1, 3, 10, 99])
    marker = rng.choice([".", ")"]) if ordered else rng.choice(["-", "*", "+"])
    items = []
    indent = "   " * depth if ordered else "  " * depth
    for k in range(rng.randint(1, 5)):
        lead = f"{start + k}{marker} " if ordered else f"{marker} "
        body = _paragraph(rng).replace("\n", "\n" + indent + " " * len(lead))
        item = indent + lead + body + "\n"
        if depth < 2 and rng.random() < 0.2:
            item += _list(rng, depth + 1)
        if rng.random() < 0.1:
            item += "\n" + indent + " " * len(lead) + _sentence(rng) + "\n"
        items.append(item)
    return ("\n" if rng.random() < 0.2 else "").join(items)


def _block(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return _paragraph(rng) + "\n"
    if r < 0.65:
        return _list(rng)
    if r < 0.72:
        return "".join("> " + line + "\n" for line in _paragraph(rng).split("\n"))
    if r < 0.77:
        return "```\n" + "\n".join(_sentence(rng) for _ in range(rng.randint(1, 4))) + "\n```\n"
    if r < 0.79:
        return "".join("    " + _sentence(rng) + "\n" for _ in range(rng.randint(1, 3)))
    if r < 0.88:
        return rng.choice(["### ", "#### "]) + _sentence(rng) + "\n"
    if r < 0.90:
        return "<!-- a comment -->\n"
    if r < 0.92:
        return f"![{rng.choice(['photo', ''])}](img{rng.randint(1, 9)}.png \"a title\")\n"
    if r < 0.93:
        return "---\n"
    return _sentence(rng) + ":\n"


def random_archive(rng: random.Random) -> str:
    parts = []
    if rng.random() < 0.3:
        parts.append("# Archive\n\nPreamble text.\n\n")
    for t in range(rng.randint(1, 3)):
        parts.append(f"## Thread {t} {rng.choice(['', '日本', 'with *emphasis*'])}\n\n")
        if rng.random() < 0.2:
            parts.append("<!-- crossposter\nschedule: 2026-12-01T09:00:00+01:00\n-->\n\n")
        if rng.random() < 0.4:
            parts.append("2024-02-13 21:25\n\n")
        for _ in range(rng.randint(0, 7)):
            parts.append(_block(rng) + "\n")
    if rng.random() < 0.3:
        parts.append("[r1]: https://example.com/reference\n")
    return "".join(parts)


def random_options(rng: random.Random) -> dict:
    small = rng.random() < 0.6
    if small:
        limits = {p: rng.randint(20, 60) for p in PLATFORMS}
    else:
        limits = {"bluesky": rng.choice([300, 120, 80, 1000]), "mastodon": rng.choice([500, 140, 90]),
                  "x": rng.choice([280, 100, 70])}
    return {"limits": limits, "numbering": rng.random() < 0.4, "post_title": rng.random() < 0.2}


# --------------------------------------------------------------------------- worker (runs in each tree)


def _dump_plan(plan) -> dict:
    def diag(d):
        return [d.line, d.message, d.platform]

    out = {"title": plan.title, "line": plan.line, "skipped": plan.skipped,
           "errors": [diag(d) for d in plan.errors], "warnings": [diag(d) for d in plan.warnings], "platforms": {}}
    for name, pp in plan.platforms.items():
        out["platforms"][name] = [pp.limit, [
            [p.text, p.length, [[f.byte_start, f.byte_end, f.kind, f.value] for f in p.facets],
             [[i.src, str(i.path), i.alt, i.title, i.line] for i in p.images], list(p.links), p.line]
            for p in pp.posts]]
    return out


def worker(tree: str, cases_path: str, out_path: str) -> None:
    sys.path.insert(0, tree)
    import crossposter

    if not Path(crossposter.__file__).resolve().is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"imported {crossposter.__file__}, not the package under {tree}")
    from crossposter.archive import ArchiveError, parse_archive, read_archive
    from crossposter.plan import PlanOptions, plan_thread

    cases = json.loads(Path(cases_path).read_text())
    results = []
    for case in cases:
        try:
            opts = PlanOptions(limits=case["limits"], numbering=case["numbering"], post_title=case["post_title"],
                               decode_images=False)
        except TypeError:  # a tree from before `decode_images` (images are missing files here anyway)
            opts = PlanOptions(limits=case["limits"], numbering=case["numbering"], post_title=case["post_title"])
        try:
            if "path" in case:
                archive = read_archive(Path(case["path"]))
            else:
                archive = parse_archive(case["text"], Path(case["dir"]) / "archive.md")
            results.append([_dump_plan(plan_thread(archive, t, opts)) for t in archive.threads])
        except ArchiveError as e:
            results.append(["ArchiveError", str(e)])
        except Exception as e:  # a crash is a result too: both trees must agree on it
            results.append(["crash", type(e).__name__, str(e)])
    Path(out_path).write_text(json.dumps(results, ensure_ascii=False))


# --------------------------------------------------------------------------- driver


def _run(tree: Path, cases_path: Path, out: Path) -> list:
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run([sys.executable, __file__, "--worker", str(tree), str(cases_path), str(out)], check=True, env=env,
                   cwd=tempfile.gettempdir())
    return json.loads(out.read_text())


def _export(commit: str, folder: Path) -> Path:
    """The `crossposter` package of `commit`, unpacked into `folder`."""
    folder.mkdir()
    data = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "crossposter"], check=True,
                          capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=data, check=True)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", help="folder holding the old `crossposter` package")
    ap.add_argument("--old-commit", help="commit to compare with (exported with git archive)")
    ap.add_argument("--new-commit", help="commit to check (default: this working tree)")
    ap.add_argument("--cases", type=int, default=3000, help="random archives")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mb", type=float, default=3.0, help="size of the generated benchmark archive (0: skip)")
    ap.add_argument("--dump", help="write every differing case (case, old, new) to this JSON file")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.old:
            old = Path(args.old)
        elif args.old_commit:
            old = _export(args.old_commit, tmp / "old")
        else:
            raise SystemExit("give --old DIR or --old-commit COMMIT")
        new = _export(args.new_commit, tmp / "new") if args.new_commit else ROOT
        default = {"limits": {"bluesky": 300, "mastodon": 500, "x": 280}, "numbering": False, "post_title": False}
        cases: list[dict] = []
        files = [Path("/work/shared/seed/tweets.md"), ROOT / "threads" / "example.md"]
        if args.mb:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from pipeline import generate

            big = tmp / "generated.md"
            big.write_text(generate(int(args.mb * 1_000_000)), encoding="utf-8")
            files.append(big)
        for f in files:
            if f.exists():
                for opts in (default, {**default, "numbering": True},
                             {"limits": {"bluesky": 60, "mastodon": 45, "x": 50}, "numbering": True,
                              "post_title": True}):
                    cases.append({"path": str(f), **opts})
        rng = random.Random(args.seed)
        for _ in range(args.cases):
            cases.append({"text": random_archive(rng), "dir": str(tmp), **random_options(rng)})
        cases_path = tmp / "cases.json"
        cases_path.write_text(json.dumps(cases, ensure_ascii=False))
        got_old = _run(old, cases_path, tmp / "old.json")
        got_new = _run(new, cases_path, tmp / "new.json")
        bad = [i for i, (a, b) in enumerate(zip(got_old, got_new, strict=True)) if a != b]
        threads = sum(len(r) for r in got_new if r and isinstance(r[0], dict))
        posts = sum(len(pp[1]) for r in got_new if r and isinstance(r[0], dict) for t in r
                    for pp in t["platforms"].values())
        crashes = sum(1 for r in got_new if r and r[0] == "crash")
        print(f"compared {len(cases)} cases ({len(cases) - args.cases} from files, {args.cases} random): "
              f"{threads} threads, {posts} posts over 3 platforms, {crashes} crashes (both sides)")
        for i in bad[:3]:
            case = cases[i]
            print(f"--- case {i} differs: {json.dumps({k: v for k, v in case.items() if k != 'text'})}")
            if "text" in case:
                print(case["text"])
            for t_old, t_new in zip(got_old[i], got_new[i], strict=False):
                if t_old != t_new:
                    print("old:", json.dumps(t_old, ensure_ascii=False)[:3000])
                    print("new:", json.dumps(t_new, ensure_ascii=False)[:3000])
                    break
        if args.dump:
            Path(args.dump).write_text(json.dumps([{"case": cases[i], "old": got_old[i], "new": got_new[i]}
                                                   for i in bad], ensure_ascii=False), encoding="utf-8")
        if bad:
            print(f"{len(bad)} of {len(cases)} cases differ")
            raise SystemExit(1)
        print("identical")


if __name__ == "__main__":
    main()
