"""The mirror as `status` shows it: source, targets, last poll, cursor, threads by state, problems.

Read from the mirror's and the backup's state files only: no network, no secrets (status runs
without them), nothing written.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossposter.config import Config


def account_name(config: Config, platform: str) -> str:
    """The name `crossposter backup` keeps the platform's cursor under (its backup module's `cursor_account`)."""
    from importlib import import_module

    from crossposter.platforms import registry

    module = registry.get(platform).backup
    return import_module(module).cursor_account(config) if module else platform


def mirror_report(config: Config, now: datetime | None = None) -> dict[str, Any] | None:
    """Plain data for `status --format json` (None without a `mirror:` section)."""
    m = config.mirror
    if m is None:
        return None
    from crossposter.backup.state import BackupState
    from crossposter.mirror.source import into_path
    from crossposter.mirror.state import DUE, WAITING, MirrorState, iso
    from crossposter.redact import redact_obj

    now = now or datetime.now(UTC)
    st = MirrorState.load(config.state_path)
    cursor = BackupState.load(config.state_path, m.from_, account_name(config, m.from_))
    settle = m.settle
    waiting = []
    for t in st.threads.values():
        if t.status in (WAITING, DUE):
            settles = t.newest.timestamp() + settle if t.newest is not None else None
            waiting.append({"title": t.title, "status": t.status, "posts": t.posts,
                            "settles_at": iso(datetime.fromtimestamp(settles, UTC)) if settles else None,
                            "message": t.message})
    others = [{"title": t.title, "status": t.status, "message": t.message} for t in st.threads.values()
              if t.status not in (WAITING, DUE, "mirrored", "before_start")]
    return redact_obj({
        "from": m.from_, "to": list(m.to), "every": m.every, "settle": settle, "into": str(into_path(config)),
        "start": iso(st.start), "last_poll": iso(st.last_poll), "last_poll_ok": st.last_poll_ok,
        "cursor": cursor.cursor, "last_backup": cursor.last_run,
        "counts": dict(Counter(t.status for t in st.threads.values())),
        "waiting": waiting, "left_alone": others, "problems": st.problems[-10:],
        "edits": m.edits, "deletions": m.deletions, "last_changes_check": iso(st.last_changes_check),
        "changes": st.changes[-10:], "actions": st.actions[-10:],
        "deleting": sum(len(ids) for t in st.threads.values() for ids in t.deleting.values()),
    })


def print_mirror(console: Any, data: dict[str, Any] | None) -> None:
    """The mirror's lines under `status`'s table."""
    if not data:
        return
    from rich.markup import escape

    counts = data["counts"]
    poll = data["last_poll"] or "never"
    if data["last_poll"] and not data["last_poll_ok"]:
        poll += " [red](with problems)[/]"
    console.print(f"Mirror: {data['from']} → {', '.join(data['to'])} every {data['every']:g} s, settle "
                  f"{data['settle']:g} s, into {escape(data['into'])}")
    console.print(f"  started {data['start'] or 'not yet'}; last poll {poll}; cursor {escape(str(data['cursor']))}")
    console.print("  threads: " + (", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
                                   or "none seen yet"))
    for w in data["waiting"]:
        console.print(f"  [cyan]{w['status']}[/] {escape(w['title'])} ({w['posts']} post(s); settles "
                      f"{w['settles_at']}){' ' + escape(w['message']) if w['message'] else ''}")
    for o in data["left_alone"]:
        console.print(f"  [yellow]{o['status'].replace('_', ' ')}[/] {escape(o['title'])}: {escape(o['message'])}")
    for c in data.get("changes", []):
        console.print(f"  [magenta]{c.get('kind', 'changed')} on the source[/] {c.get('at', '')}: "
                      f"{escape(str(c.get('message', '')))}")
    for a in data.get("actions", []):
        style = "green" if a.get("kind") == "deleted" else "red"
        console.print(f"  [{style}]{str(a.get('kind', 'done')).replace('_', ' ')} on {a.get('platform', '?')}[/] "
                      f"{a.get('at', '')}: {escape(str(a.get('message', '')))}")
    if data.get("deleting"):
        when = "tried at each poll" if data.get("deletions") == "delete" else "left alone while deletions: report"
        console.print(f"  [yellow]{data['deleting']} post(s) listed to delete on the targets[/] ({when})")
    for p in data["problems"]:
        style = "red" if p.get("kind") == "error" else "yellow"
        console.print(f"  [{style}]{p.get('kind', 'problem')}[/] {p.get('at', '')}: {escape(p.get('message', ''))}")
