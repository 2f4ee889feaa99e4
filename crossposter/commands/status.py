"""`crossposter status`: every thread's schedule, progress per platform, links and problems.

It reads the archives (the source of truth for what is published) and the daemon's state
file (for what the archive cannot say: missed, failed, waiting for a retry). No network:
`m` in "n/m" is the planned post count at the configured limits, the same plan `preview`
shows and `post` checks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crossposter.daemon.state import UNFINISHED


def collect(paths: list[Path], config: Any, now: datetime | None = None) -> dict[str, Any]:
    """The status as plain data (what `--format json` prints; the table is drawn from it)."""
    from zoneinfo import ZoneInfo

    from crossposter.archive import ArchiveError, read_archive
    from crossposter.commands.preview import _shown_path as shown_path
    from crossposter.daemon.state import STATE_FILE, DaemonState
    from crossposter.daemon.watch import thread_info
    from crossposter.plan import expand_paths, plan_thread
    from crossposter.redact import redact_obj
    from crossposter.timeparse import next_slot_time

    now = now or datetime.now(UTC)
    zone = ZoneInfo(config.timezone)
    platforms = config.enabled_platforms()
    state = DaemonState.load(config.state_path / STATE_FILE)
    files = expand_paths(paths) if paths else config.archive_paths()
    next_slot = next_slot_time(config.daemon.queue_slots, config.timezone, now)
    out: dict[str, Any] = {"timezone": config.timezone, "platforms": platforms,
                           "next_queue_slot": next_slot.astimezone(zone).isoformat(timespec="seconds") if next_slot else None,
                           "threads": [], "archive_errors": []}
    for path in files:
        path = Path(path).resolve()
        try:
            archive = read_archive(path)
        except ArchiveError as e:
            out["archive_errors"].append(str(e))
            continue
        for thread in archive.threads:
            info = thread_info(path, thread, config.timezone)  # the validated block: `info.meta`
            plan = plan_thread(archive, thread, config, platforms) if not info.skipped else None
            per: dict[str, Any] = {}
            for p in platforms:
                entries = info.meta.recorded(p) if info.meta is not None else ()
                total = len(plan.platforms[p].posts) if plan is not None and p in plan.platforms else 0
                per[p] = {"posted": len(entries), "total": total, "links": [e.link for e in entries]}
                if info.meta is not None and info.meta.source == p:
                    # backed up from here: its recorded posts are the originals, the whole thread on p
                    per[p].update(total=len(entries), source=True)
            # the planner reports a broken block too (as `preview` shows it); a skipped thread is not planned
            errors = [{"line": d.line, "message": (f"[{d.platform}] " if d.platform else "") + d.message}
                      for d in plan.errors] if plan is not None else \
                [{"line": line or thread.line, "message": message} for line, message in info.problems]
            daemon = state.get(info.key, info.sig)
            out["threads"].append({
                # described as `preview --format json` describes a thread: the same path, skipped + skip_reason
                "archive": shown_path(path), "title": thread.title, "line": thread.line,
                "skipped": info.skipped is not None, "skip_reason": info.skipped,
                "schedule": info.schedule.astimezone(zone).isoformat(timespec="seconds") if info.schedule else None,
                "queued": info.queued,
                "state": _state(info, per, daemon, now, config.daemon.misfire_grace),
                "platforms": per, "errors": errors,
                # the state file is redacted when written and read; again here, as it is shown
                "daemon": redact_obj({k: daemon[k] for k in ("outcome", "message", "at", "retry_at") if k in daemon})
                if daemon else None,
            })
    from crossposter.mirror.report import mirror_report

    out["mirror"] = mirror_report(config, now)  # None without a `mirror:` section
    return out


def _state(info: Any, per: dict[str, Any], daemon: dict | None, now: datetime, grace: int) -> str:
    """One word for the table: what is going on with this thread."""
    if info.problems:
        return "error"
    if info.skipped:
        return "skipped"
    if per and all(v["total"] and v["posted"] >= v["total"] for v in per.values()):
        return "published"
    if daemon and daemon.get("outcome") in UNFINISHED:
        return str(daemon["outcome"])
    if any(v["posted"] for v in per.values() if not v.get("source")) or info.pending:
        return "partial"
    if info.schedule is not None:
        if info.schedule > now:
            return "scheduled"
        # the daemon has not said, but its time is past: the same rule the daemon applies
        return "due" if (now - info.schedule).total_seconds() <= grace else "missed"
    if info.queued:
        return "queued"
    if info.source is not None:
        return "backed-up"  # on its source platform only, and nothing asks to send it elsewhere
    return "draft"


_STYLE = {"published": "green", "scheduled": "cyan", "queued": "cyan", "partial": "yellow", "retrying": "yellow",
          "stopped": "yellow", "due": "yellow", "missed": "red", "failed": "red", "error": "red", "skipped": "dim", "draft": "",
          "backed-up": "blue"}


def _table(data: dict[str, Any]) -> None:
    """A table that fits 80 columns and a pipe: short cells that never wrap inside a word, and the
    long things (links, problems) listed under it, one per line, where they can be read and copied."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    platforms = data["platforms"]
    threads = [t for t in data["threads"] if t["skip_reason"] != "table of contents"]
    table = Table(title="crossposter status", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1))
    table.add_column("Thread", ratio=1, min_width=12, overflow="fold")
    table.add_column("When", no_wrap=True)
    table.add_column("State", no_wrap=True)
    for p in platforms:
        table.add_column(p, no_wrap=True, justify="right", min_width=len(p))
    details: list[str] = []
    for n, t in enumerate(threads, 1):
        where = f"{Path(t['archive']).name}:{t['line']}"
        when = t["schedule"][:16].replace("T", " ") if t["schedule"] else ("queued" if t["queued"] else "")
        cells = [f"{v['posted']}/{v['total']}" + (" src" if v.get("source") else "")
                 for v in (t["platforms"][p] for p in platforms)]
        style = _STYLE.get(t["state"], "")
        state = f"[{style}]{t['state']}[/]" if style else t["state"]
        lines = [f"  {p}{' (source)' if t['platforms'][p].get('source') else ''}: {link}"
                 for p in platforms for link in t["platforms"][p]["links"]]
        lines += [f"  line {e['line']}: {e['message']}" for e in t["errors"]]
        if t["daemon"] and t["daemon"].get("outcome") in UNFINISHED:
            lines.append(f"  daemon: {t['daemon'].get('message', '')}")
        mark = f" [{n}]" if lines else ""
        table.add_row(f"{escape(t['title'])}{mark}\n[dim]{escape(where)}[/]", when, state, *cells)
        if lines:
            details.append(f"[{n}] {t['title']} ({where})")
            details.extend(lines)
    console.print(table)
    for line in details:
        console.print(line, markup=False, soft_wrap=True)  # a URL is printed whole, never folded
    if details:
        console.print()
    console.print(f"Times in {data['timezone']}. Next queue slot: {data['next_queue_slot'] or 'none configured'}")
    from crossposter.mirror.report import print_mirror

    print_mirror(console, data.get("mirror"))


def run(paths: list[Path], fmt: str, config_path: Path | None) -> int:
    from crossposter.config import (
        ConfigError,
        config_for_command,
        config_places,
        find_config_file,
        secret_values,
    )
    from crossposter.messages import error, fail, warning

    secret_values()  # registers the secrets: the daemon's messages shown below may be from an older version
    try:
        config = config_for_command(config_path)
    except ConfigError as e:
        return fail(e)
    missing = [p for p in paths if not p.exists()]
    if missing:
        return fail("\n".join(f"{p}: no such file or folder (give an archive file or a folder of *.md files)"
                               for p in missing), 2)
    if not paths:
        if find_config_file(config_path) is None:
            warning(f"no config file (looked for {', '.join(config_places())}); showing {config.archives} "
                    f"in {config.base_dir} with the default settings")
        if not config.archive_paths():
            return fail(f"no archive: {config.archives} match no file in {config.base_dir}; give archive files "
                        "or folders, or set `archives` in the config", 2)
    data = collect(paths, config)
    if fmt == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _table(data)
    for e in data["archive_errors"]:
        error(e)
    return 1 if data["archive_errors"] else 0
