"""`status` (table and JSON) and `check` (everything that would stop a scheduled post)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossposter.commands import check as check_cmd
from crossposter.commands import status as status_cmd
from crossposter.platforms.base import Limits, UnauthorizedError

LONG = "word " * 80  # 400 characters: 2 posts on Bluesky (300), 1 on Mastodon (500)


def _setup(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "threads").mkdir()
    future = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    long_ago = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0).isoformat()
    (tmp_path / "threads" / "a.md").write_text(
        "# Archive\n\n"
        f"## Scheduled one\n<!-- crossposter\nschedule: {future}\n-->\n\n{LONG.strip()}\n\n"
        "## Half done\n<!-- crossposter\nmastodon:\n- {id: '11', url: 'https://m.example/@me/11', sha: 'aa'}\n"
        "-->\n\nShort text.\n\n### Second\n\nMore.\n\n"
        "## Queued one\n<!-- crossposter\nqueued: true\n-->\n\nQueued text.\n\n"
        f"## Missed one\n<!-- crossposter\nschedule: {long_ago}\n-->\n\nToo late.\n\n"
        "## Broken draft\n\n![a missing image](nope.png)\n",
        encoding="utf-8")
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: Europe/Berlin\nstate_dir: state\narchives: ['threads/*.md']\n"
                   "platforms: {bluesky: {handle: me.test}}\n"
                   f"daemon: {{queue_slots: ['mon-fri 09:00', 'sat 10:30'], misfire_grace: 600}}\n{extra}")
    return cfg


def test_status_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _setup(tmp_path)
    assert status_cmd.run([], "json", cfg) == 0
    data = json.loads(capsys.readouterr().out)
    by = {t["title"]: t for t in data["threads"]}
    assert data["platforms"] == ["bluesky", "mastodon"]
    s = by["Scheduled one"]
    assert s["state"] == "scheduled" and s["schedule"].endswith(("+01:00", "+02:00"))
    assert s["platforms"]["bluesky"] == {"posted": 0, "total": 2, "links": []}
    assert s["platforms"]["mastodon"]["total"] == 1
    h = by["Half done"]
    assert h["state"] == "partial"
    assert h["platforms"]["mastodon"] == {"posted": 1, "total": 2, "links": ["https://m.example/@me/11"]}
    assert by["Queued one"]["state"] == "queued" and by["Queued one"]["queued"] is True
    assert by["Missed one"]["state"] == "missed"
    assert by["Broken draft"]["errors"] and "nope.png" in json.dumps(by["Broken draft"]["errors"])
    nxt = datetime.fromisoformat(data["next_queue_slot"])
    assert nxt.strftime("%H:%M") in ("09:00", "10:30") and nxt > datetime.now(UTC)


def test_status_shows_daemon_outcomes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from crossposter.archive import read_archive
    from crossposter.config import load_config
    from crossposter.daemon.state import STATE_FILE, DaemonState
    from crossposter.daemon.watch import thread_info

    cfg = _setup(tmp_path)
    config = load_config(cfg)
    a = (tmp_path / "threads" / "a.md").resolve()
    info = thread_info(a, read_archive(a).find("Queued one"), config.timezone)
    st = DaemonState(config.state_path / STATE_FILE)
    st.set(info.key, outcome="failed", sig=info.sig, message="mastodon: rejected 0/1 (422 text too long)")
    assert status_cmd.run([tmp_path / "threads"], "json", cfg) == 0
    t = {t["title"]: t for t in json.loads(capsys.readouterr().out)["threads"]}["Queued one"]
    assert t["state"] == "failed" and "422" in t["daemon"]["message"]
    # the table shows the same
    monkeypatch.setenv("COLUMNS", "250")
    assert status_cmd.run([], "text", cfg) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "422" in out and "missed" in out and "Next queue slot" in out
    assert "https://m.example/@me/11" in out and "1/2" in out


def test_status_cli_text(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    r = subprocess.run([sys.executable, "-m", "crossposter", "status", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert r.returncode == 0, r.stderr
    for word in ("Scheduled one", "Half done", "scheduled", "partial", "queued", "missed", "0/2", "1/2"):
        assert word in r.stdout, word


class _Adapter:
    def __init__(self, name: str, fail: bool) -> None:
        self.name = name
        self.fail = fail

    def login(self) -> None:
        if self.fail:
            raise UnauthorizedError(self.name, "401 invalid token")

    def limits(self) -> Limits:
        return Limits(max_characters=500, characters_reserved_per_url=23)


def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", "pw-abcdef")
    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", "tok-abcdef")
    monkeypatch.delenv("CROSSPOSTER_FAKE_PLATFORMS", raising=False)


def test_check_reports_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _setup(tmp_path)
    _secrets(monkeypatch)
    import crossposter.platforms as platforms_pkg

    monkeypatch.setattr(platforms_pkg, "load_adapter", lambda p, config: _Adapter(p, fail=(p == "mastodon")))
    assert check_cmd.run(cfg) == 1
    out = capsys.readouterr().out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert any("mastodon: login failed: 401 invalid token" in f for f in fails)
    assert any("'Missed one'" in f and "beyond the 10 min misfire grace" in f for f in fails)
    assert not any("Broken draft" in f or "nope.png" in f for f in fails)  # unscheduled: only a warning
    assert any(line.startswith("warn") and "nope.png" in line for line in out.splitlines())
    assert "ok    bluesky: logged in" in out
    assert len(fails) == 2, fails


def test_check_passes_when_all_is_well(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _setup(tmp_path)
    a = tmp_path / "threads" / "a.md"
    text = a.read_text()
    a.write_text(text[: text.index("## Missed one")])
    _secrets(monkeypatch)
    import crossposter.platforms as platforms_pkg

    monkeypatch.setattr(platforms_pkg, "load_adapter", lambda p, config: _Adapter(p, fail=False))
    assert check_cmd.run(cfg) == 0, capsys.readouterr().out


def test_check_missing_secret_bad_schedule_and_scheduled_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _setup(tmp_path)
    a = tmp_path / "threads" / "a.md"
    future = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    a.write_text(a.read_text() + f"\n## Bad time\n<!-- crossposter\nschedule: next tuesday\n-->\n\nText.\n\n"
                 f"## Scheduled broken\n<!-- crossposter\nschedule: {future}\n-->\n\n![x](missing.png)\n")
    monkeypatch.delenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN_FILE", raising=False)
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", "pw-abcdef")
    import crossposter.platforms as platforms_pkg

    logged: list[str] = []
    monkeypatch.setattr(platforms_pkg, "load_adapter", lambda p, config: logged.append(p) or _Adapter(p, False))
    assert check_cmd.run(cfg) == 1
    out = capsys.readouterr().out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert logged == ["bluesky"]  # no login attempt without the token
    assert any("CROSSPOSTER_MASTODON_ACCESS_TOKEN is not set" in f for f in fails)
    assert any("next tuesday" in f for f in fails)
    assert any("missing.png" in f for f in fails)


def test_check_unwritable_state_dir_and_bad_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = _setup(tmp_path)
    cfg.write_text(cfg.read_text().replace("state_dir: state", f"state_dir: {blocker}/sub"))
    _secrets(monkeypatch)
    import crossposter.platforms as platforms_pkg

    monkeypatch.setattr(platforms_pkg, "load_adapter", lambda p, config: _Adapter(p, False))
    assert check_cmd.run(cfg) == 1
    assert "not writable" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("platforms: {mastodon: {visibilty: public}}\n")
    assert check_cmd.run(bad) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("crossposter: error: config ")  # an error, in the one voice, on stderr
    assert "platforms.mastodon.visibilty: unknown key" in captured.err


# --------------------------------------------------------------------------- what a person sees


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    root = str(Path(__file__).resolve().parents[2])
    base = {k: v for k, v in os.environ.items() if k not in ("CROSSPOSTER_CONFIG", "COLUMNS")}
    return subprocess.run([sys.executable, "-m", "crossposter", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**base, "PYTHONPATH": root, "XDG_CONFIG_HOME": str(cwd / "xdg"), **env})


def test_status_fits_80_columns_in_a_pipe(tmp_path: Path) -> None:
    """Piped (not a terminal) at COLUMNS=80: no header or title broken mid-word, every line fits,
    links and problems printed whole under the table."""
    from rich.cells import cell_len

    cfg = _setup(tmp_path, "platforms: {bluesky: {handle: me.test}, x: {enabled: true, username: me}}\n")
    r = _cli("status", "-c", str(cfg), cwd=tmp_path, COLUMNS="80")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(cell_len(line.rstrip()) <= 80 for line in lines if "://" not in line and "line " not in line), lines
    header = next(line for line in lines if "Thread" in line)
    assert header.split() == ["Thread", "When", "State", "bluesky", "mastodon", "x"]
    for title in ("Scheduled one", "Half done", "Queued one", "Missed one", "Broken draft"):
        assert any(line.lstrip().startswith(title) for line in lines), title
    assert "  mastodon: https://m.example/@me/11" in lines  # the link whole, on its own line
    assert any("line 38: image file 'nope.png' not found" in line for line in lines)
    assert "Times in Europe/Berlin" in r.stdout


def test_status_errors_go_to_stderr(tmp_path: Path) -> None:
    r = _cli("status", str(tmp_path / "nope.md"), cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("crossposter: error: ") and "nope.md: no such file or folder" in r.stderr
    # no config: it says where it looked (and that nothing matched), not an empty table
    r = _cli("status", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert "no config file (looked for $CROSSPOSTER_CONFIG (not set), " in r.stderr
    assert str(tmp_path / "crossposter.yaml") in r.stderr and str(tmp_path / "xdg" / "crossposter") in r.stderr
    assert "match no file" in r.stderr


def test_status_and_preview_json_describe_a_thread_the_same_way(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    with (tmp_path / "threads" / "a.md").open("a", encoding="utf-8") as f:
        f.write("\n## Draft\n<!-- crossposter\nskip: true\n-->\n\nNot yet.\n")
    status = json.loads(_cli("status", "-f", "json", "-c", str(cfg), cwd=tmp_path).stdout)["threads"]
    preview = json.loads(_cli("preview", "-f", "json", "-c", str(cfg), cwd=tmp_path).stdout)["threads"]
    keys = ("archive", "title", "line", "skipped", "skip_reason")
    assert [{k: t[k] for k in keys} for t in status] == [{k: t[k] for k in keys} for t in preview]
    draft = status[-1]
    assert draft["skipped"] is True and draft["skip_reason"] == "skip: true"
    assert status[0]["archive"] == "threads/a.md"
