"""`crossposter preview`: the dry run every user starts with. No config, credentials or network needed."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from crossposter.messages import fail, warning
from crossposter.model import ThreadPlan

EXIT_OK, EXIT_THREAD_ERRORS, EXIT_USAGE = 0, 1, 2


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _mastodon_account(instance: str) -> str:
    """The config names the instance, not the account (the token says which): a placeholder on that server."""
    from urllib.parse import urlsplit

    host = urlsplit(instance if "://" in instance else f"https://{instance}").hostname
    return f"you@{host}" if host else ""


def plans_to_json(plans: list[ThreadPlan]) -> dict:
    """The JSON document of DESIGN.md (plus line numbers, facets and dates where known)."""
    threads = []
    for plan in plans:
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
                if name == "bluesky":
                    item["facets"] = [{"byte_start": f.byte_start, "byte_end": f.byte_end, "type": f.kind,
                                       "value": f.value} for f in post.facets]
                posts.append(item)
            platforms[name] = {"limit": pp.limit, "posts": posts}
        threads.append({
            "archive": _shown_path(plan.archive),
            "title": plan.title,
            "line": plan.line,
            "skipped": plan.skipped is not None,
            "skip_reason": plan.skipped,
            "platforms": platforms,
            "warnings": [d.as_dict() for d in plan.warnings],
            "errors": [d.as_dict() for d in plan.errors],
        })
    return {"threads": threads}


def run(paths: list[Path], thread: str | None, platforms: list[str] | None, fmt: str, output: Path | None,
        open_browser: bool, config_path: Path | None) -> int:
    from crossposter.plan import PlanOptions, plan_paths

    options = PlanOptions(decode_images=False)
    handles: dict[str, str] = {}
    if config_path:  # only then is pydantic imported: the plain preview must start fast
        from crossposter.config import ConfigError, load_config

        try:
            config = load_config(config_path)
        except ConfigError as e:
            return fail(e, EXIT_USAGE)
        options = dataclasses.replace(PlanOptions.of(config), decode_images=False)
        handles = {"bluesky": config.platforms.bluesky.handle, "x": config.platforms.x.username,
                   "mastodon": _mastodon_account(config.platforms.mastodon.instance)}
        handles = {k: v for k, v in handles.items() if v}
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
    plans = plan_paths(paths, options, platforms, thread)
    if thread is not None and not plans:
        from crossposter.archive import unknown_title
        from crossposter.plan import expand_paths

        titles = [p.title for p in plan_paths(paths, options, []) if p.title]
        return fail(f"{', '.join(map(str, expand_paths(paths)))}: {unknown_title(thread, titles)}", EXIT_USAGE)
    if not plans:
        return fail(f"no archives (*.md) found in {', '.join(map(str, paths))}", EXIT_USAGE)

    if fmt == "json":
        text = json.dumps(plans_to_json(plans), ensure_ascii=False, indent=2) + "\n"
        if output:
            output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    elif fmt == "html":
        from crossposter.preview_html import write_html

        target = output or Path("preview.html")
        write_html(plans, target, False, handles=handles or None)
        print(f"wrote {target}", file=sys.stderr)
        if open_browser:
            import webbrowser

            if not webbrowser.open(target.resolve().as_uri()):
                warning(f"no browser found here; open {target.resolve()} yourself")
    else:
        from crossposter.preview_text import print_plans

        print_plans(plans, output)
    return EXIT_THREAD_ERRORS if any(p.errors for p in plans) else EXIT_OK
