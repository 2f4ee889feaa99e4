"""`crossposter status`: every thread's schedule, progress per platform, links and problems.

It reads the archives (the source of truth for what is published) and the daemon's state
file (for what the archive cannot say: missed, failed, waiting for a retry). No network:
`m` in "n/m" is the planned post count at the configured limits, the same plan `preview`
shows and `post` checks.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def collect(paths: list[Path], config: Any, now: datetime | None = None) -> dict[str, Any]:
    """The status as plain data (what `--format json` prints; the table is drawn from it)."""
    from zoneinfo import ZoneInfo

    from crossposter.archive import ArchiveError, read_archive
    from crossposter.plan import expand_paths, plan_thread
    from crossposter.redact import redact_obj
    from crossposter.schedule import STATE_FILE, DaemonState, thread_info
    from crossposter.timeparse import next_slot_time

    now = now or datetime.now(UTC)
    zone = ZoneInfo(config.timezone)
    platforms = config.enabled_platforms()
    state = DaemonState.load(config.state_path / STATE_FILE)
    files = expand_paths(paths) if paths else config.archive_paths()
    nxt = next_slot_time(config.daemon.queue_slots, config.timezone, now)
    out: dict[str, Any] = {"timezone": config.timezone, "platforms": platforms,
                           "next_queue_slot": nxt.astimezone(zone).isoformat(timespec="seconds") if nxt else None,
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
            # the planner reports a broken block too (as `preview` shows it); a skipped thread is not planned
            errors = [{"line": d.line, "message": (f"[{d.platform}] " if d.platform else "") + d.message}
                      for d in plan.errors] if plan is not None else \
                [{"line": line or thread.line, "message": message} for line, message in info.problems]
            daemon = state.get(info.key, info.sig)
            out["threads"].append({
                "archive": str(path), "title": thread.title, "line": thread.line, "skipped": info.skipped,
                "schedule": info.schedule.astimezone(zone).isoformat(timespec="seconds") if info.schedule else None,
                "queued": info.queued,
                "state": _state(info, per, daemon, now, config.daemon.misfire_grace),
                "platforms": per, "errors": errors,
                # the state file is redacted when written and read; again here, as it is shown
                "daemon": redact_obj({k: daemon[k] for k in ("outcome", "message", "at", "retry_at") if k in daemon})
                if daemon else None,
            })
    return out


def _state(info: Any, per: dict[str, Any], daemon: dict | None, now: datetime, grace: int) -> str:
    """One word for the table: what is going on with this thread."""
    if info.problems:
        return "error"
    if info.skipped:
        return "skipped"
    if per and all(v["total"] and v["posted"] >= v["total"] for v in per.values()):
        return "published"
    if daemon and daemon.get("outcome") in ("missed", "failed", "retrying", "stopped"):
        return str(daemon["outcome"])
    if any(v["posted"] for v in per.values()) or info.pending:
        return "partial"
    if info.schedule is not None:
        if info.schedule > now:
            return "scheduled"
        # the daemon has not said, but its time is past: the same rule the daemon applies
        return "due" if (now - info.schedule).total_seconds() <= grace else "missed"
    if info.queued:
        return "queued"
    return "draft"


_STYLE = {"published": "green", "scheduled": "cyan", "queued": "cyan", "partial": "yellow", "retrying": "yellow",
          "stopped": "yellow", "due": "yellow", "missed": "red", "failed": "red", "error": "red", "skipped": "dim", "draft": ""}


def _table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    platforms = data["platforms"]
    table = Table(title="crossposter status", title_justify="left", show_lines=True)
    table.add_column("Archive", overflow="fold")
    table.add_column("Thread", overflow="fold")
    table.add_column(f"Scheduled ({data['timezone']})", no_wrap=True)
    table.add_column("State", no_wrap=True)
    for p in platforms:
        table.add_column(p, overflow="fold")
    table.add_column("Problems", overflow="fold")
    for t in data["threads"]:
        if t["skipped"] == "table of contents":
            continue
        cells = []
        for p in platforms:
            v = t["platforms"][p]
            cell = f"{v['posted']}/{v['total']}"
            if v["links"]:
                cell += "\n" + v["links"][0] + (f"\n(+{len(v['links']) - 1} more)" if len(v["links"]) > 1 else "")
            cells.append(cell)
        when = t["schedule"][:16].replace("T", " ") if t["schedule"] else ("queued" if t["queued"] else "")
        problems = [f"line {e['line']}: {e['message']}" for e in t["errors"]]
        if t["daemon"] and t["daemon"].get("outcome") in ("missed", "failed", "retrying", "stopped"):
            problems.append(t["daemon"].get("message", ""))
        style = _STYLE.get(t["state"], "")
        table.add_row(Path(t["archive"]).name, f"{t['title']} (line {t['line']})", when,
                      f"[{style}]{t['state']}[/]" if style else t["state"], *cells, "\n".join(problems))
    console.print(table)
    console.print(f"Next queue slot: {data['next_queue_slot'] or 'none configured'}")
    for e in data["archive_errors"]:
        console.print(f"[red]error:[/] {e}")


def run(paths: list[Path], fmt: str, config_path: Path | None) -> int:
    from crossposter.config import ConfigError, config_for_command, secret_values
    from crossposter.redact import redact

    secret_values()  # registers the secrets: the daemon's messages shown below may be from an older version
    try:
        config = config_for_command(config_path)
    except ConfigError as e:
        print(redact(f"error: {e}"), file=sys.stderr)
        return 1
    if fmt not in ("text", "json"):
        print(f"error: --format {fmt}: status prints text or json", file=sys.stderr)
        return 1
    data = collect(paths, config)
    if fmt == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _table(data)
    return 1 if data["archive_errors"] else 0
