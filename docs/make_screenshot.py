"""Regenerate docs/preview.png: the HTML preview of the bundled example, as headless Chromium draws it.

    python docs/make_screenshot.py                      # threads/ → docs/preview.png at 1280×900
    python docs/make_screenshot.py --thread "Title"     # show that thread (default: the first with images)
    python docs/make_screenshot.py --dark --output docs/preview-dark.png

Needs Debian's chromium (`bash .ci/install-chromium.sh`). When threads/ has no archive yet, or with --fixture,
the hand-built, seed-shaped plans of tests/fixtures/html/sample_plans.py are shown instead (the script says so).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crossposter.model import ThreadPlan  # noqa: E402
from crossposter.preview_html import render_html  # noqa: E402


def example_plans(archive: Path) -> list[ThreadPlan]:
    """The plans `crossposter preview threads/ --format html` shows (no config: default platforms and limits)."""
    from crossposter import plan

    if hasattr(plan, "PlanOptions"):
        return plan.plan_paths([archive], plan.PlanOptions())
    from crossposter.config import default_config

    return plan.plan_paths([archive], default_config())


def fixture_plans(folder: Path) -> list[ThreadPlan]:
    spec = importlib.util.spec_from_file_location(
        "preview_html_sample_plans", ROOT / "tests" / "fixtures" / "html" / "sample_plans.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_plans(folder)


def pick(plans: list[ThreadPlan], title: str | None) -> int:
    """1-based number of the thread to show: the named one, else the first that shows images and no errors."""
    if title is not None:
        for n, plan in enumerate(plans, 1):
            if plan.title == title:
                return n
        raise SystemExit(f"no thread titled {title!r}; titles: {', '.join(repr(p.title) for p in plans)}")
    candidates = [
        (not plan.errors, any(post.images for pp in plan.platforms.values() for post in pp.posts), -n, n)
        for n, plan in enumerate(plans, 1)
        if not plan.skipped and plan.platforms
    ]
    if not candidates:
        return 1
    return max(candidates)[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archive", type=Path, default=ROOT / "threads", help="archive file or folder (threads/)")
    ap.add_argument("--thread", help="title of the thread to show")
    ap.add_argument("--output", type=Path, default=ROOT / "docs" / "preview.png")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    ap.add_argument("--fixture", action="store_true", help="use the test fixture, not the archive")
    ap.add_argument("--keep-html", type=Path, help="also write the rendered page here")
    args = ap.parse_args()

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print("chromium not found: run `bash .ci/install-chromium.sh` first", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="crossposter-shot-") as tmp:
        tmpdir = Path(tmp)
        has_archive = args.archive.is_file() or any(args.archive.glob("*.md"))
        if args.fixture or not has_archive:
            if not args.fixture:
                print(f"note: {args.archive} holds no archive yet; showing the test fixture instead",
                      file=sys.stderr)
            plans = fixture_plans(tmpdir / "fixture")
            source = "test fixture"
            # the fixture thread that shows the most at once: image grids, ALT badges, an error, over-limit
            args.thread = args.thread or "Aespa - Post-Training Quantization of Hyper-Scale Transformers"
        else:
            plans = example_plans(args.archive)
            source = str(args.archive.relative_to(ROOT) if args.archive.is_relative_to(ROOT) else args.archive)
        n = pick(plans, args.thread)
        page = tmpdir / "preview.html"
        page.write_text(render_html(plans), encoding="utf-8")
        if args.keep_html:
            shutil.copyfile(page, args.keep_html)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmpdir / 'profile'}",
            f"--window-size={args.width},{args.height}", f"--screenshot={args.output.resolve()}",
        ]
        if args.dark:
            cmd.append("--force-dark-mode")
        cmd.append(f"{page.as_uri()}#t{n}")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if proc.returncode != 0 or not args.output.exists():
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
    try:
        from PIL import Image

        with Image.open(args.output) as im:
            im.load()
            im.save(args.output, "PNG", optimize=True)
    except ImportError:
        pass
    print(f"wrote {args.output} ({source}, thread {plans[n - 1].title!r}, {args.width}×{args.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
