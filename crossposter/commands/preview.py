"""`crossposter preview`: the dry run every user starts with. No config, credentials or network needed."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from crossposter.messages import fail, warning
from crossposter.model import ThreadPlan
from crossposter.platforms import registry
from crossposter.platforms.registry import PlatformName

EXIT_OK, EXIT_THREAD_ERRORS, EXIT_USAGE = 0, 1, 2


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def plans_to_json(plans: list[ThreadPlan]) -> dict:
    """The JSON document of DESIGN.md (plus line numbers, facets and dates where known)."""
    return {"threads": [plan_to_json(plan) for plan in plans]}


def plan_to_json(plan: ThreadPlan) -> dict:
    """One thread of `plans_to_json`."""
    platforms = {}
    for name, pp in plan.platforms.items():
        posts = []
        for post in pp.posts:
            item: dict = {
                "text": post.text,
                "length": post.length,
                "line": post.line,
                "images": [{"path": img.src, "alt": img.alt, "title": img.title, "line": img.line}
                           for img in post.images],
                "links": [{"url": url} for url in post.links],
            }
            if registry.get(name).link_style == "facets":
                item["facets"] = [{"byte_start": f.byte_start, "byte_end": f.byte_end, "type": f.kind,
                                   "value": f.value} for f in post.facets]
            posts.append(item)
        platforms[name] = {"limit": pp.limit, "posts": posts}
    return {
        "archive": _shown_path(plan.archive),
        "title": plan.title,
        "line": plan.line,
        "skipped": plan.skipped is not None,
        "skip_reason": plan.skipped,
        "platforms": platforms,
        "warnings": [d.as_dict() for d in plan.warnings],
        "errors": [d.as_dict() for d in plan.errors],
    }


def write_json(plans: Iterable[ThreadPlan], out: TextIO) -> None:
    """`json.dumps(plans_to_json(plans), ensure_ascii=False, indent=2) + "\\n"`, written one thread at a time.

    The same bytes, but a big archive's document never exists whole in memory (nor its plans).
    """
    out.write('{\n  "threads": [')
    first = True
    for plan in plans:
        text = json.dumps(plan_to_json(plan), ensure_ascii=False, indent=2)
        out.write(("\n    " if first else ",\n    ") + text.replace("\n", "\n    "))
        first = False
    out.write("]\n}\n" if first else "\n  ]\n}\n")


class _Seen:
    """Passes plans through, remembering whether any had errors (for the exit code)."""

    def __init__(self, plans: Iterable[ThreadPlan]) -> None:
        self.plans = plans
        self.errors = False

    def __iter__(self) -> Iterator[ThreadPlan]:
        for plan in self.plans:
            self.errors = self.errors or bool(plan.errors)
            yield plan


def run(paths: list[Path], thread: str | None, platforms: list[PlatformName] | None, fmt: str, output: Path | None,
        open_browser: bool, config_path: Path | None, force: bool = False) -> int:
    from crossposter.plan import PlanOptions, expand_paths, iter_plans

    options = PlanOptions(decode_images=False)
    handles: dict[str, str] = {}
    if config_path:  # only then is pydantic imported: the plain preview must start fast
        from crossposter.config import ConfigError, load_config

        try:
            config = load_config(config_path)
        except ConfigError as e:
            return fail(e, EXIT_USAGE)
        options = dataclasses.replace(PlanOptions.of(config), decode_images=False)
        handles = {name: account for name in registry.names() if (account := config.platforms.section(name).account())}
        if platforms is None:
            platforms = config.enabled_platforms()
        if not paths:
            paths = config.archive_paths()
            if not paths:
                return fail(f"no archive: the config's `archives` {config.archives} match no file in "
                            f"{config.base_dir}", EXIT_USAGE)
    if not paths:
        paths = [Path("threads")]
    missing = [p for p in paths if not p.exists()]
    if missing:
        return fail("\n".join(f"{p}: no such file or folder (give an archive file or a folder of *.md files)"
                               for p in missing), EXIT_USAGE)
    target = output if output is not None or fmt != "html" else Path("preview.html")
    if target is not None:
        from crossposter.output_file import refusal

        inputs = [*expand_paths(paths), *([config_path] if config_path else [])]
        problem = refusal(target, inputs, force)
        if problem:
            return fail(problem, EXIT_USAGE)
    plans = iter_plans(paths, options, platforms, thread)
    first = next(plans, None)
    if first is None:
        if thread is not None:
            from crossposter.archive import unknown_title

            titles = [p.title for p in iter_plans(paths, options, []) if p.title]
            return fail(f"{', '.join(map(str, expand_paths(paths)))}: {unknown_title(thread, titles)}", EXIT_USAGE)
        return fail(f"no archives (*.md) found in {', '.join(map(str, paths))}", EXIT_USAGE)
    seen = _Seen(itertools.chain([first], plans))

    if fmt == "json":
        if target is None:
            write_json(seen, sys.stdout)
        else:
            from crossposter.output_file import replace_atomically

            with replace_atomically(target) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
                write_json(seen, f)
    elif fmt == "html":
        from crossposter.output_file import replace_atomically
        from crossposter.preview_html import write_page

        assert target is not None
        with replace_atomically(target) as tmp, tmp.open("w", encoding="utf-8") as f:
            write_page(seen, f, handles=handles or None)
        print(f"wrote {target}", file=sys.stderr)
        if open_browser:
            import webbrowser

            if not webbrowser.open(target.resolve().as_uri()):
                warning(f"no browser found here; open {target.resolve()} yourself")
    else:
        from crossposter.preview_text import print_plans

        if target is None:
            print_plans(seen, None)
        else:
            from crossposter.output_file import replace_atomically

            with replace_atomically(target) as tmp:
                print_plans(seen, tmp)
    return EXIT_THREAD_ERRORS if seen.errors else EXIT_OK
