"""What a person sees of the command line: help, options, errors in one voice, pipes, `init`.

Most checks run the CLI as a subprocess, since the point is the exit code and what lands on
stdout and stderr (a pipe, not a terminal).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossposter.cli import build_parser
from crossposter.messages import duration, plural

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("preview", "post", "schedule", "unschedule", "status", "check", "daemon", "health", "init")


def cli(*args: str, cwd: Path = ROOT, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_") and k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "crossposter", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, input=stdin, env={**base, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(cwd / ".xdg"),
                                                     **env})


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "threads", tmp_path / "threads")
    return tmp_path


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# --------------------------------------------------------------------------- help


def test_every_command_is_in_the_help_and_has_examples_and_described_arguments() -> None:
    subs = _subparsers()
    assert set(subs) >= set(COMMANDS)
    for name, sub in subs.items():
        text = sub.format_help()
        examples = [line.strip() for line in text.split("examples:\n", 1)[-1].splitlines() if line.strip()]
        assert "examples:\n" in text, name
        assert 1 <= len(examples) <= 2 and all(e.startswith(f"crossposter {name}") for e in examples), (name, examples)
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and len(action.help) > 10, (name, action.dest)


def test_help_examples_run_as_written(work: Path) -> None:
    """The examples that need no config or network do what they say (they name the bundled example)."""
    r = cli("preview", "threads/example.md", "-t", "Counting other scripts", "-p", "bluesky,x", cwd=work)
    assert r.returncode == 0, r.stderr
    r = cli("preview", "--help")
    assert r.returncode == 0 and "-p bluesky,x" in r.stdout


# --------------------------------------------------------------------------- options


def test_comma_separated_platforms_mean_the_same_as_repeated() -> None:
    parser = build_parser()
    a = parser.parse_args(["preview", "-p", "bluesky,x"])
    b = parser.parse_args(["preview", "-p", "bluesky", "-p", "x"])
    c = parser.parse_args(["preview", "--platform", "x, bluesky", "-p", "x"])
    assert a.platforms == b.platforms == ["bluesky", "x"] and c.platforms == ["x", "bluesky"]


def test_comma_separated_platforms_on_the_command_line(work: Path) -> None:
    r = cli("preview", "threads", "-f", "json", "-p", "bluesky,x", cwd=work)
    assert r.returncode == 0, r.stderr
    assert all(list(t["platforms"]) == ["bluesky", "x"] for t in json.loads(r.stdout)["threads"] if not t["skipped"])
    r = cli("preview", "threads", "-p", "bluesky,twitter", cwd=work)
    assert r.returncode == 2 and r.stdout == ""
    assert "crossposter preview: error: " in r.stderr and "unknown platform twitter" in r.stderr
    assert "bluesky, mastodon, x" in r.stderr


def test_open_and_an_html_output_name_imply_the_html_format(work: Path) -> None:
    r = cli("preview", "threads", "-o", "page.html", cwd=work)
    assert r.returncode == 0, r.stderr
    assert (work / "page.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    r = cli("preview", "threads", "--open", cwd=work, BROWSER="true")  # `true URL`: a browser that opens nothing
    assert r.returncode == 0, r.stderr
    assert (work / "preview.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    r = cli("preview", "threads", "-o", "page.txt", cwd=work)  # not .html: the terminal format, into the file
    assert r.returncode == 0 and "<html" not in (work / "page.txt").read_text(encoding="utf-8").lower()
    r = cli("preview", "threads", "--open", "-f", "json", cwd=work)
    assert r.returncode == 2 and "--open shows the HTML preview" in r.stderr


# --------------------------------------------------------------------------- a mistyped title


@pytest.mark.parametrize("command", [
    ["preview", "threads/example.md"],
    ["post", "threads/example.md", "--dry-run"],
    ["schedule", "threads/example.md", "--at", "2099-01-01T09:00+01:00"],
    ["unschedule", "threads/example.md"],
])
def test_a_mistyped_thread_title_suggests_the_nearest_in_every_command(work: Path, command: list[str]) -> None:
    before = (work / "threads" / "example.md").read_bytes()
    r = cli(*command, "--thread", "Countng other script", cwd=work)
    assert r.returncode != 0 and r.stdout == ""
    said = [line for line in r.stderr.splitlines() if not line.startswith("crossposter: warning: ")]
    assert said[0].startswith("crossposter: error: ")
    assert "no thread titled 'Countng other script' (did you mean 'Counting other scripts'?)" in r.stderr
    assert "'A picture needs words'" in r.stderr  # and the titles there are
    assert r.stderr.count("no thread titled") == 1  # said once
    assert (work / "threads" / "example.md").read_bytes() == before


def test_preview_flags_two_threads_with_one_title(tmp_path: Path) -> None:
    """Titles identify threads (post, schedule, the daemon's state): two alike make every one of those ambiguous."""
    (tmp_path / "a.md").write_text("## Notes\n\nOne.\n\n## Other\n\nTwo.\n\n##  notes \n\nThree.\n")
    r = cli("preview", "a.md", "-f", "json", cwd=tmp_path)
    assert r.returncode == 1
    errors = {t["line"]: [e["message"] for e in t["errors"]] for t in json.loads(r.stdout)["threads"]}
    assert errors[5] == []
    assert "another thread has the title 'Notes' (line 9)" in errors[1][0]
    assert "another thread has the title 'notes' (line 1)" in errors[9][0]
    # asking for it by title shows both, flagged, rather than "no thread titled"
    r = cli("preview", "a.md", "-t", "NOTES", "-f", "json", cwd=tmp_path)
    assert r.returncode == 1 and [t["line"] for t in json.loads(r.stdout)["threads"]] == [1, 9]


# --------------------------------------------------------------------------- one voice


def test_errors_start_the_same_way_and_go_to_stderr(work: Path) -> None:
    (work / "bad.yaml").write_text("platforms: {mastodon: {visibilty: public}}\n")
    cases = [
        ("preview", "nope.md"),
        ("preview", "threads", "-c", "bad.yaml"),
        ("post", "nope.md", "-t", "A", "--dry-run"),
        ("post", "threads/example.md", "-t", "Counting other scripts", "-c", "bad.yaml"),
        ("schedule", "threads/example.md", "-t", "Counting other scripts", "--at", "yesterday"),
        ("schedule", "threads/example.md", "-t", "Counting other scripts", "--at", "2001-01-01 10:00"),
        ("status", "nope.md"),
        ("status", "-c", "bad.yaml"),
        ("check",),
        ("check", "-c", "bad.yaml"),
        ("daemon",),
        ("health", "-c", "bad.yaml"),
        ("init",),  # no terminal and no -p
    ]
    for args in cases:
        r = cli(*args, cwd=work)
        assert r.returncode != 0, args
        assert r.stdout == "", (args, r.stdout)
        assert r.stderr.startswith("crossposter: error: "), (args, r.stderr)
        assert "Traceback" not in r.stderr, args
        first = r.stderr.splitlines()[0]
        assert r.stderr.count(first) == 1, (args, r.stderr)  # nothing said twice


@pytest.mark.parametrize("args", [("status",), ("preview",), ("post", "-t", "A", "--dry-run"),
                                  ("schedule", "-t", "A", "--at", "2099-01-01T09:00Z"), ("unschedule", "-t", "A")])
def test_a_fifo_for_an_archive_is_refused_not_waited_on(work: Path, args: tuple[str, ...]) -> None:
    """Opening a FIFO for reading waits for a writer: every command used to hang there for good."""
    os.mkfifo(work / "fifo.md")
    r = cli(args[0], "fifo.md", *args[1:], cwd=work)  # the helper's timeout would fail the test on a hang
    assert r.returncode != 0 and "Traceback" not in r.stderr
    said = r.stderr + r.stdout  # (preview reports an unreadable archive in its report, as any other error)
    assert "fifo.md" in said and ("is a FIFO" in said or "not a regular file" in said)


def test_plurals_in_what_commands_print(work: Path) -> None:
    r = cli("preview", "threads/example.md", "-t", "Counting other scripts", "-p", "x", cwd=work)
    assert "1 thread, 1 post, 0 skipped, 0 errors, 0 warnings" in r.stdout
    assert "(s)" not in r.stdout + r.stderr


def test_plural_and_duration() -> None:
    assert [plural(n, "post") for n in (0, 1, 2)] == ["0 posts", "1 post", "2 posts"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"
    assert duration(119398) == "1 day 9 h"
    assert duration(45) == "45 s" and duration(600) == "10 min" and duration(3900) == "1 h 5 min"
    assert duration(2 * 86400) == "2 days" and duration(90) == "1 min 30 s"


@given(st.floats(min_value=0, max_value=10**9, allow_nan=False))
def test_a_duration_is_two_units_at_most_and_never_more_than_it_says(seconds: float) -> None:
    """Never longer than the time, and short of it by less than one of the smallest unit it could have shown."""
    words = duration(seconds).split()
    assert len(words) in (2, 4)
    order = [("day", 86400), ("h", 3600), ("min", 60), ("s", 1)]
    size = dict(order) | {"days": 86400}
    said = sum(int(n) * size[unit] for n, unit in zip(words[::2], words[1::2], strict=True))
    first = [u for u, _ in order].index(words[1].rstrip("s") if words[1] == "days" else words[1])
    finest = order[min(first + 1, 3)][1]
    assert said <= round(seconds) < said + finest


# --------------------------------------------------------------------------- pipes


def _closed_pipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """The reader is gone before the command writes (as `| head` is once it has its lines)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_")}
    env = {**base, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(cwd / ".xdg")}
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "crossposter", *args], stdout=write, stderr=subprocess.PIPE,
                              cwd=cwd, env=env, timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [
    ("--help",), ("--version",), ("preview", "--help"), ("preview", "threads"), ("preview", "threads", "-f", "json"),
    ("status", "threads"), ("status", "threads", "-f", "json"), ("check",),
    ("post", "threads/example.md", "-t", "Counting other scripts", "--dry-run"),
    ("schedule", "threads/example.md", "-t", "Counting other scripts", "--at", "2099-01-01 09:00"),
    ("unschedule", "threads/example.md", "-t", "Counting other scripts"),
    ("health",), ("init", "-p", "bluesky", "-o", "new.yaml"),
])
def test_a_closed_pipe_never_prints_a_traceback(work: Path, args: tuple[str, ...]) -> None:
    (work / "crossposter.yaml").write_text("archives: ['threads/*.md']\nplatforms: {bluesky: {handle: me.test}}\n")
    r = _closed_pipe(*args, cwd=work)
    err = r.stderr.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err


def test_a_daemon_whose_log_reader_went_away_keeps_running_quietly(work: Path) -> None:
    """`crossposter daemon | head`: no "Logging error" traceback per line; the daemon runs on and stops cleanly."""
    import signal
    import time

    (work / "crossposter.yaml").write_text("archives: ['threads/*.md']\nplatforms: {bluesky: {handle: me.test}}\n"
                                           "daemon: {heartbeat_interval: 1, publisher_process: false}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_")}
    env.update(PYTHONPATH=str(ROOT), CROSSPOSTER_FAKE_PLATFORMS="1")
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.Popen([sys.executable, "-m", "crossposter", "daemon"], cwd=work, env=env, stdout=write,
                            stderr=subprocess.PIPE)
    os.close(write)
    try:
        deadline = time.monotonic() + 60
        while not (work / ".crossposter" / "heartbeat").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""  # still running
        assert cli("health", cwd=work).returncode == 0
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    text = err.decode()
    assert "Logging error" not in text and "Traceback" not in text and "BrokenPipeError" not in text, text


def test_head_of_a_long_preview_is_quiet(work: Path) -> None:
    """The real thing: `crossposter preview … | head -n 3` on an archive far longer than a pipe's buffer."""
    text = "".join(f"## Thread {n}\n\n{'Some words here. ' * 40}\n\n" for n in range(300))
    (work / "long.md").write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(f"{sys.executable} -m crossposter preview long.md | head -n 3", shell=True, cwd=work,
                       capture_output=True, text=True, env=env, timeout=120)
    assert len(r.stdout.splitlines()) == 3
    assert r.stderr == ""


# --------------------------------------------------------------------------- init


def test_init_writes_a_commented_config_that_loads_and_names_the_variables(work: Path) -> None:
    from crossposter.config import load_config

    secret = "hunter2-app-password-zzz"
    r = cli("init", "-p", "bluesky,mastodon", "--bluesky-handle", "me.bsky.social", "--mastodon-instance",
            "fosstodon.org", "--timezone", "Europe/Berlin", cwd=work, CROSSPOSTER_BLUESKY_PASSWORD=secret)
    assert r.returncode == 0, r.stderr
    written = (work / "crossposter.yaml").read_text(encoding="utf-8")
    assert secret not in written and secret not in r.stdout + r.stderr
    assert written.count("\n#") >= 5  # commented
    config = load_config(work / "crossposter.yaml")
    assert config.enabled_platforms() == ["bluesky", "mastodon"]
    assert config.platforms.bluesky.handle == "me.bsky.social"
    assert config.platforms.mastodon.instance == "https://fosstodon.org"
    assert config.timezone == "Europe/Berlin" and config.archives == ["threads/*.md"]
    for name in ("CROSSPOSTER_BLUESKY_PASSWORD", "CROSSPOSTER_MASTODON_ACCESS_TOKEN"):
        assert f"export {name}=" in r.stdout and name in written
    assert "CROSSPOSTER_X_" not in r.stdout
    assert "crossposter check" in r.stdout


def test_init_never_overwrites(work: Path) -> None:
    (work / "crossposter.yaml").write_text("# mine\n")
    r = cli("init", "-p", "x", "--x-username", "me", cwd=work)
    assert r.returncode == 1 and r.stderr.startswith("crossposter: error: ") and "already exists" in r.stderr
    assert (work / "crossposter.yaml").read_text() == "# mine\n"
    (work / "link.yaml").symlink_to(work / "elsewhere.yaml")  # a dangling link is not written through either
    r = cli("init", "-p", "x", "-o", "link.yaml", cwd=work)
    assert r.returncode == 1 and not (work / "elsewhere.yaml").exists()


def test_init_refuses_a_bad_answer_and_writes_nothing(work: Path) -> None:
    r = cli("init", "-p", "bluesky", "--timezone", "Mars/Olympus", cwd=work)
    assert r.returncode == 2 and "unknown time zone 'Mars/Olympus'" in r.stderr
    assert sorted(p.name for p in work.iterdir()) == ["threads"]


def test_init_asks_in_a_terminal(work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from crossposter.commands import init
    from crossposter.config import load_config

    answers = iter(["bluesky, twitter", "x,bluesky", "me.bsky.social", "@me", ""])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    out = work / "c.yaml"
    assert init.run(None, out, {}, None, interactive=True) == 0
    assert "unknown: twitter" in capsys.readouterr().out
    config = load_config(out)
    assert config.enabled_platforms() == ["bluesky", "x"] and config.platforms.x.username == "@me"
    assert config.timezone == "UTC"


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(("typed", "kept"), [("mastodon.social", "https://mastodon.social"),
                                             ("https://fosstodon.org/", "https://fosstodon.org"),
                                             ("http://127.0.0.1:3000", "http://127.0.0.1:3000")])
def test_a_mastodon_instance_without_scheme_is_https(tmp_path: Path, typed: str, kept: str) -> None:
    from crossposter.config import load_config

    (tmp_path / "c.yaml").write_text(f"platforms: {{mastodon: {{instance: '{typed}'}}}}\n")
    assert load_config(tmp_path / "c.yaml").platforms.mastodon.instance == kept


@pytest.mark.parametrize("typed", ["https://mastodon.social/@me", "ftp://mastodon.social", "", "https://"])
def test_a_mastodon_instance_that_is_not_a_server_is_refused(tmp_path: Path, typed: str) -> None:
    from crossposter.config import ConfigError, load_config

    (tmp_path / "c.yaml").write_text(f"platforms: {{mastodon: {{instance: '{typed}'}}}}\n")
    with pytest.raises(ConfigError, match="platforms.mastodon.instance: .*not a server address"):
        load_config(tmp_path / "c.yaml")


# --------------------------------------------------------------------------- post --dry-run


def test_a_dry_run_checks_credentials_and_never_suggests_resuming(work: Path) -> None:
    """Regression guard: the dry run goes through the real pre-flight (credentials included) and, having sent
    nothing, never tells the person to "run the same command again to resume"."""
    (work / "crossposter.yaml").write_text("platforms: {bluesky: {handle: me.test}, mastodon: {enabled: false}}\n")
    before = (work / "threads" / "example.md").read_bytes()
    r = cli("post", "threads/example.md", "-t", "Counting other scripts", "--dry-run", cwd=work)
    assert r.returncode == 2  # what the real run would exit with
    assert "CROSSPOSTER_BLUESKY_PASSWORD is not set" in r.stderr
    assert r.stderr.count("CROSSPOSTER_BLUESKY_PASSWORD is not set") == 1
    assert "again to resume" not in r.stdout + r.stderr and "Run again" not in r.stdout + r.stderr
    assert "nothing was sent" in r.stdout
    assert (work / "threads" / "example.md").read_bytes() == before
    r = cli("post", "threads/example.md", "-t", "Counting other scripts", "--dry-run", cwd=work,
            CROSSPOSTER_BLUESKY_PASSWORD="app-pass-word-1234")
    assert r.returncode == 0, r.stderr
    assert "again to resume" not in r.stdout + r.stderr
