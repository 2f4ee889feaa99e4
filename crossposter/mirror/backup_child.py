"""The mirror's backup in a process of its own, and the cheap look that usually makes it unnecessary.

Why out of process: the atproto SDK costs ~35 MB of resident memory once imported and Python never
gives module memory back, so a daemon that ran the backup itself would idle above the 80 MB target
after its first poll. The child (`python -m crossposter.mirror.backup_child`) gets the config on
stdin, runs `run_backup` exactly as `crossposter backup` would (same reader, same cursor), prints
one JSON line and exits; its log lines go to the daemon's log.

Why a look first: with nothing new (most polls) a Bluesky or Mastodon source needs no child at
all: one request with the standard library tells whether anything was written since the
backup's cursor (Bluesky: an unauthenticated `com.atproto.repo.listRecords` after its record key;
Mastodon: the account's statuses with `min_id` and `limit=1`; X: the user's posts with
`since_id`, signed with OAuth 1.0a by oauthlib, after one `/2/users/me` per daemon). Any doubt
(no cursor yet, an error, a read stopped half-way) runs the backup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crossposter.config import Config
    from crossposter.mirror.changes import SourceView
    from crossposter.mirror.source import BackupResult


def nothing_new(config: Config) -> bool:
    """True only when the source lists nothing after the backup's cursor (its backup module's `nothing_new`;
    a platform without one always runs the backup)."""
    m = config.mirror
    if m is None:
        return False
    from importlib import import_module

    from crossposter.platforms import registry

    module = registry.get(m.from_).backup
    look = getattr(import_module(module), "nothing_new", None) if module else None
    return bool(look(config)) if look is not None else False


def records_unchanged(config: Config, posts: list[tuple[str, str | None]]) -> bool:
    """True only when each (post ID, recorded strong ref) is still that very post on the source.

    The look before a settled thread is handed on (`Mirror._hold_edited`): the source's backup module's
    `records_unchanged` (Bluesky: one unauthenticated getRecord per post) instead of a child process
    that reads the account (~4 s of the settle-to-post delay). A platform without one, or any doubt,
    answers False and the full read decides.
    """
    m = config.mirror
    if m is None or not posts:
        return False
    from importlib import import_module

    from crossposter.platforms import registry

    module = registry.get(m.from_).backup
    look = getattr(import_module(module), "records_unchanged", None) if module else None
    return bool(look(config, posts)) if look is not None else False


def _child(config: Config, timeout: float, **extra: object) -> dict:
    """Run the child with the config (and `extra`) on stdin; its JSON answer, or RuntimeError (redacted)."""
    payload = json.dumps({"config": config.model_dump(mode="json"), "base_dir": str(config.base_dir), **extra})
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        proc = subprocess.run([sys.executable, "-P", "-m", "crossposter.mirror.backup_child"], input=payload,
                              stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout, env=env,
                              cwd=str(config.base_dir))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the backup took longer than {timeout:.0f} s and was stopped (the next poll "
                           "continues from the saved cursor)") from None
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        out = json.loads(lines[-1]) if lines else {}
    except ValueError:
        out = {}
    if proc.returncode != 0 or "error" in out:
        raise RuntimeError(out.get("error") or f"the backup process exited with code {proc.returncode}")
    return out


def run_in_child(config: Config, timeout: float) -> BackupResult:
    """One backup in a child process; raises RuntimeError (redacted message) when it fails as a whole."""
    from crossposter.mirror.source import BackupResult

    out = _child(config, timeout)
    if "newest" not in out:
        raise RuntimeError("the backup process gave no result")
    return BackupResult(newest={k: datetime.fromisoformat(v) for k, v in out["newest"].items()},
                        problems=list(out.get("problems", [])), complete=bool(out.get("complete", True)),
                        notes=[str(n) for n in out.get("notes", [])])


def backup_out_of_process(config: Config) -> BackupResult:
    """The daemon's backup: skipped when the source shows nothing new, else run in a child process."""
    from crossposter.mirror.source import BackupResult

    if nothing_new(config):
        return BackupResult(newest={}, problems=[])
    assert config.mirror is not None
    return run_in_child(config, timeout=max(600.0, 5 * config.mirror.every))


def changes_out_of_process(config: Config, since: datetime, expect: list[str]) -> SourceView:
    """The mirror's read for edits and deletions (`changes.read_view`), in a child process like the backup."""
    from crossposter.mirror.changes import view_from_json

    assert config.mirror is not None
    out = _child(config, max(600.0, 5 * config.mirror.every), changes={"since": since.isoformat(), "expect": expect})
    if "view" not in out:
        raise RuntimeError("the source read for edits and deletions gave no result")
    return view_from_json(out["view"])


def delete_out_of_process(config: Config, platform: str, ids: list[str]) -> dict[str, tuple[str, str] | None]:
    """The mirror's deletions on one target (`propagate.delete_posts`), in a child process like the backup.

    A child that dies half-way leaves its IDs in the mirror's `deleting` list: the next poll asks again,
    and a post already gone counts as deleted.
    """
    assert config.mirror is not None
    return _outcomes(_child(config, max(600.0, 5 * config.mirror.every), delete={"platform": platform, "ids": ids}))


def update_out_of_process(config: Config, platform: str, texts: dict[str, str]) -> dict[str, tuple[str, str] | None]:
    """The mirror's edits of its own posts (`propagate.update_posts`, `edits: update`), in a child process."""
    assert config.mirror is not None
    return _outcomes(_child(config, max(600.0, 5 * config.mirror.every), update={"platform": platform,
                                                                                 "texts": texts}))


def _outcomes(out: dict) -> dict[str, tuple[str, str] | None]:
    outcomes = out.get("outcomes")
    if not isinstance(outcomes, dict):
        raise RuntimeError("the delete or edit process gave no result")
    return {str(k): (str(v[0]), str(v[1])) if isinstance(v, list) and len(v) == 2 else None
            for k, v in outcomes.items() if v is None or isinstance(v, list)}


def main() -> None:
    """The child: config on stdin, one JSON line on stdout, logs on stderr."""
    from crossposter.config import Config, secret_values
    from crossposter.logs import setup_logging
    from crossposter.redact import redact, redact_obj

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but the result may reach the pipe
    first = json.loads(sys.stdin.readline())
    config = Config.model_validate({**first["config"], "base_dir": first["base_dir"]})
    setup_logging(config.daemon.log_format, secret_values(), stream=sys.stderr)
    from crossposter.mirror.source import run_source_backup

    if isinstance(first.get("delete"), dict) or isinstance(first.get("update"), dict):
        from crossposter.mirror.propagate import delete_posts, update_posts

        try:
            if isinstance(first.get("delete"), dict):
                outcomes = delete_posts(config, str(first["delete"]["platform"]),
                                        [str(x) for x in first["delete"]["ids"]])
            else:
                outcomes = update_posts(config, str(first["update"]["platform"]),
                                        {str(k): str(v) for k, v in dict(first["update"]["texts"]).items()})
        except Exception as e:
            out.write(json.dumps({"error": redact(f"{type(e).__name__}: {e}")}) + "\n")
            out.flush()
            raise SystemExit(1) from None
        out.write(json.dumps(redact_obj({"outcomes": outcomes})) + "\n")
        out.flush()
        return
    if isinstance(first.get("changes"), dict):
        from crossposter.mirror.changes import read_view, view_to_json

        try:
            view = read_view(config, datetime.fromisoformat(first["changes"]["since"]),
                             [str(x) for x in first["changes"]["expect"]])
        except Exception as e:
            out.write(json.dumps({"error": redact(f"{type(e).__name__}: {e}")}) + "\n")
            out.flush()
            raise SystemExit(1) from None
        out.write(json.dumps(redact_obj({"view": view_to_json(view)})) + "\n")
        out.flush()
        return
    try:
        result = run_source_backup(config)
    except Exception as e:
        out.write(json.dumps({"error": redact(f"{type(e).__name__}: {e}")}) + "\n")
        out.flush()
        raise SystemExit(1) from None
    out.write(json.dumps(redact_obj({"newest": {k: v.isoformat() for k, v in result.newest.items()},
                                     "problems": result.problems, "complete": result.complete,
                                     "notes": result.notes})) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
