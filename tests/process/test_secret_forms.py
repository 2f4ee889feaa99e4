"""Secrets in every form, through every command.

Three layers: the redaction itself (every encoding a value can take, Authorization headers
whatever the value, a property test over arbitrary values); how secrets are read (white space,
line breaks, `_FILE`s that are FIFOs, devices, folders, not UTF-8, huge or empty, and the same
for the config file), each a one-line error from every command that reads them; and the whole
program against a hostile local server that answers 401 echoing the credential it received in
every encoding, run as subprocesses (`check`, `post`, `daemon`, `status`, `health`) with a
token ending in a newline and a secret file ending in one. Every output, log line and file
under the state directory is then searched for every form of every secret.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossposter.config import (
    SECRET_FILE_MAX_BYTES,
    ConfigError,
    load_config,
    platform_secrets,
    read_secret,
)
from crossposter.redact import MIN_SECRET_LENGTH, REDACTED, Redactor, _base64_cores
from tests.fixtures_echo import echo_server, encodings, leak_forms

ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- the redaction itself

SAMPLES = [
    "SEKRITmastotok",  # letters only: every escaping leaves it as it is
    "SEKRIT-bsky/pw+1=q'\\z",  # what URL, repr and JSON escaping all change
    'tök€n 😀 x"y',  # non-ASCII (\\x, \\u, surrogate pairs, multi-byte percent escapes) and a space
    "abcd",  # the shortest secret kept
    "a%2Fb&amp;<c>",  # already looks escaped
]


@pytest.mark.parametrize("secret", SAMPLES)
@pytest.mark.parametrize("form", sorted(encodings("x")))
def test_every_form_of_a_secret_is_redacted(secret: str, form: str) -> None:
    text = encodings(secret)[form]
    r = Redactor([secret])
    out = r.redact(f"before «{text}» after")
    assert REDACTED in out
    for name, leaked in leak_forms(secret).items():
        assert leaked not in out, (form, name, out)
    assert out.startswith("before «")
    if form != "authorization":  # an Authorization header's value runs to the end of its line
        assert out.endswith("» after"), out


def test_base64_of_user_colon_secret_goes_whole() -> None:
    import base64

    secret = "SEKRIT-app-pass"
    r = Redactor([secret])
    for prefix in (b"", b"a:", b"ab:", b"abc:", b"me.bsky.social:"):
        for suffix in (b"", b":x", b"\n"):
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                blob = enc(prefix + secret.encode() + suffix).decode()
                assert r.redact(f"Basic {blob}, then") in ("Basic ***, then",), blob
                assert r.redact(f"token={blob.rstrip('=')}&next=1") == "token=***&next=1", blob


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer unknown.token-value", "Authorization: Bearer ***"),
    ("{'Authorization': 'Bearer unknown-token', 'Accept': '*/*'}", "{'Authorization': 'Bearer ***', 'Accept': '*/*'}"),
    ('{"authorization": "Basic dXNlcjpwYXNz", "x": 1}', '{"authorization": "Basic ***", "x": 1}'),
    ("[('Authorization', 'Token abcdefgh')]", "[('Authorization', 'Token ***')]"),
    ("{'Authorization': b'OAuth oauth_nonce=\"1\", oauth_consumer_key=\"ck\", oauth_signature=\"s%3D\"'}",
     "{'Authorization': b'OAuth ***'}"),
    ('{"headers": "{\\"Authorization\\": \\"Bearer abcdefgh\\"}"}', '{"headers": "{\\"Authorization\\": \\"Bearer ***\\"}"}'),
    ("header value: 'Bearer UNKNOWNTOKEN\\n'", "header value: 'Bearer ***'"),
    ('OAuth oauth_consumer_key="ck", oauth_token="tok", oauth_signature="x" then', "OAuth *** then"),
    ("proxy-authorization=secretvalue\nnext line", "proxy-authorization=***\nnext line"),
    ("session eyJhbGciOiJFUzI1NksifQ.eyJzdWIiOiJkaWQ6cGxjOmFiYyJ9.c2lnbmF0dXJl ok", "session *** ok"),
])
def test_authorization_credentials_go_whatever_the_value(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize("text", [
    "mastodon: checking the access token on https://mastodon.social: HTTP 401: The access token is invalid "
    "(check CROSSPOSTER_MASTODON_ACCESS_TOKEN)",
    "x: publishing post 2: HTTP 403: You are not allowed to create a Tweet with duplicate content.",
    "the bearer token is wrong; Basic usage: see the README. authorization required",
    "threads/a.md:12: [bluesky] post 3 is 312 graphemes, over the limit of 300",
    "",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    r = Redactor(SAMPLES)
    assert r.redact(text) == text


def test_secrets_shorter_than_the_minimum_are_not_redacted_and_not_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decision: a secret under MIN_SECRET_LENGTH characters is refused when read (no platform issues one),
    so the redactor, which would otherwise hide ordinary words, never needs to hide it."""
    short = "x" * (MIN_SECRET_LENGTH - 1)
    assert Redactor([short]).redact(f"box {short}") == f"box {short}"
    with pytest.raises(ConfigError, match="CROSSPOSTER_MASTODON_ACCESS_TOKEN is 3 character"):
        read_secret("CROSSPOSTER_MASTODON_ACCESS_TOKEN", {"CROSSPOSTER_MASTODON_ACCESS_TOKEN": short + "\n"})


_SECRET_CHARS = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"))
#: The characters escaping and encoding change, densely: where a mistake in the patterns would show.
_SPECIAL = st.sampled_from(list("ab\\\"'/%+=&;#: éx😀"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=st.one_of(st.text(_SECRET_CHARS, min_size=MIN_SECRET_LENGTH, max_size=40),
                        st.text(_SPECIAL, min_size=MIN_SECRET_LENGTH, max_size=12)).filter(lambda s: s.strip() == s),
       form=st.sampled_from(sorted(leak_forms("x"))),
       before=st.one_of(st.text(max_size=20), st.text(_SPECIAL, max_size=8)),
       after=st.one_of(st.text(max_size=20), st.text(_SPECIAL, max_size=8)))
def test_no_form_survives_redaction(secret: str, form: str, before: str, after: str) -> None:
    """Property: whatever the value and the text around it, no encoding of the value is left."""
    r = Redactor([secret])
    out = r.redact(before + encodings(secret)[form] + after)
    for name, leaked in leak_forms(secret).items():
        if len(leaked) >= MIN_SECRET_LENGTH:
            assert leaked not in out, (name, out)


def test_base64_cores_only_depend_on_the_secret() -> None:
    import base64

    secret = "SEKRIT-xyz"
    for prefix in range(6):
        blob = base64.b64encode(b"q" * prefix + secret.encode()).decode()
        assert any(core in blob for core in _base64_cores(secret)), prefix


def test_log_records_are_redacted_in_every_form(tmp_path: Path) -> None:
    """The daemon's log handler and the X adapter's OAuth-logger filter are the same mechanism."""
    import io
    import logging

    from crossposter.logs import setup_logging
    from crossposter.platforms.x import _install_redactor

    secret = "SEKRIT-log/tok+1='\\z"
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_logging("json", [secret], stream=stream)
        forms = encodings(secret)
        logging.getLogger("crossposter.test").error("refused: %s", " | ".join(forms.values()),
                                                    extra={"event": "x", "detail": forms["base64-basic"]})
        try:
            raise ValueError(forms["repr-bearer"])
        except ValueError:
            logging.getLogger("crossposter.test").exception("boom")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    out = stream.getvalue()
    assert out.count(REDACTED) >= len(forms) and "boom" in out and "ValueError" in out
    assert not [name for name, form in leak_forms(secret).items() if form in out], out

    other = "SEKRIT-oauth-ck/2"
    _install_redactor([other])
    record = logging.LogRecord("oauthlib.oauth1.rfc5849", logging.DEBUG, __file__, 1,
                               "Signature base string: %s", (encodings(other)["quote-twice"],), None)
    for f in logging.getLogger("oauthlib.oauth1.rfc5849").filters:
        f.filter(record)
    assert record.getMessage() == "Signature base string: ***"


def test_platform_error_messages_are_redacted_where_server_text_becomes_ours() -> None:
    from crossposter.platforms.base import UnauthorizedError
    from crossposter.redact import register

    secret = "SEKRIT-platform-err/1"
    register([secret])
    e = UnauthorizedError("mastodon", "HTTP 401: " + encodings(secret)["json"] + " " + encodings(secret)["base64"])
    assert e.message == "HTTP 401: *** ***" and str(e) == "mastodon: HTTP 401: *** ***"


def test_daemon_state_and_heartbeat_are_private_and_redacted(tmp_path: Path) -> None:
    from crossposter.daemon.state import DaemonState, write_heartbeat
    from crossposter.redact import register

    secret = "SEKRIT-state/tok"
    register([secret])
    path = tmp_path / "state" / "daemon-state.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"threads": {"a::T": {"outcome": "failed", "message": f"Bearer {secret}"}}}))
    path.chmod(0o644)  # as an older version left it
    state = DaemonState.load(path)
    assert state.get("a::T")["message"] == "Bearer ***" and state.exposed
    state.scrub()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and secret not in path.read_text()
    state.set("b::T", outcome="failed", message=f"HTTP 401: {encodings(secret)['quote']}", links={"x": [secret]})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "SEKRIT" not in path.read_text() and "HTTP 401: ***" in path.read_text()
    write_heartbeat(tmp_path / "state")
    (tmp_path / "state" / "heartbeat").chmod(0o644)
    write_heartbeat(tmp_path / "state")
    assert stat.S_IMODE((tmp_path / "state" / "heartbeat").stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["daemon-state.json", "heartbeat"]


# --------------------------------------------------------------------------- reading secrets

TOKEN = "CROSSPOSTER_MASTODON_ACCESS_TOKEN"


def _bad_files(tmp_path: Path) -> dict[str, str]:
    """A path for every kind of unusable secret file."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "latin1").write_bytes(b"SEKRIT-t\xf6ken\n")
    (tmp_path / "huge").write_bytes(b"A" * (SECRET_FILE_MAX_BYTES + 1))
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "blank").write_bytes(b" \n\n")
    (tmp_path / "two-lines").write_text("SEKRIT-one\nSEKRIT-two\n")
    (tmp_path / "folder").mkdir()
    return {"fifo": str(fifo), "dev-zero": "/dev/zero", "folder": str(tmp_path / "folder"),
            "not-utf8": str(tmp_path / "latin1"), "huge": str(tmp_path / "huge"), "empty": str(tmp_path / "empty"),
            "blank": str(tmp_path / "blank"), "two-lines": str(tmp_path / "two-lines"),
            "missing": str(tmp_path / "nope")}


EXPECTED = {"fifo": "is a FIFO", "dev-zero": "is a character device", "folder": "is a folder",
            "not-utf8": "is not UTF-8", "huge": f"larger than {SECRET_FILE_MAX_BYTES}", "empty": "is empty",
            "blank": "is empty", "two-lines": "has a line break inside", "missing": "does not exist"}


def test_secret_white_space_is_stripped_from_the_environment_and_files(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("  SEKRIT-file-token\r\n")
    assert read_secret(TOKEN, {TOKEN: "SEKRIT-env-token\n"}).get_secret_value() == "SEKRIT-env-token"
    assert read_secret(TOKEN, {TOKEN: "\t SEKRIT-env-token  "}).get_secret_value() == "SEKRIT-env-token"
    assert read_secret(TOKEN, {f"{TOKEN}_FILE": str(f)}).get_secret_value() == "SEKRIT-file-token"
    f.write_bytes(b"\xef\xbb\xbfSEKRIT-bom-token\n")  # Notepad's byte order mark is not part of it either
    assert read_secret(TOKEN, {f"{TOKEN}_FILE": str(f)}).get_secret_value() == "SEKRIT-bom-token"
    assert read_secret(TOKEN, {TOKEN: ""}) is None  # `NAME=` in a compose file: not set


@pytest.mark.parametrize("value", ["SEKRIT\ntwo", "SEKRIT\r\ntwo", "SEKRIT\x1b[0mtwo", "SEKRIT\u2028two",
                                   "SEKRIT\u200btwo", "SEKRIT\x00two", "SEKRIT\udcfftwo"])
def test_a_line_break_or_control_character_inside_is_refused_without_the_value(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        read_secret(TOKEN, {TOKEN: value})
    (message,) = e.value.problems
    assert message.startswith(TOKEN) and "\n" not in message
    assert "SEKRIT" not in message and "two" not in message


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_unusable_secret_files_are_one_clear_line(kind: str, tmp_path: Path) -> None:
    path = _bad_files(tmp_path)[kind]
    started = time.monotonic()
    with pytest.raises(ConfigError) as e:
        read_secret(TOKEN, {f"{TOKEN}_FILE": path})
    assert time.monotonic() - started < 5
    (message,) = e.value.problems
    assert message.startswith(f"{TOKEN}_FILE: ") and EXPECTED[kind] in message, message
    assert "\n" not in message and "SEKRIT" not in message and "not set" not in message


def test_every_problem_of_a_platform_is_reported_at_once(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path)
    env = {"CROSSPOSTER_X_CONSUMER_KEY_FILE": bad["fifo"], "CROSSPOSTER_X_CONSUMER_SECRET": "ok-secret-value",
           "CROSSPOSTER_X_ACCESS_TOKEN_FILE": bad["empty"]}
    with pytest.raises(ConfigError) as e:
        platform_secrets("x", env)
    assert [p.split(":")[1].strip() for p in e.value.problems] == [
        "CROSSPOSTER_X_CONSUMER_KEY_FILE", "CROSSPOSTER_X_ACCESS_TOKEN_FILE",
        "CROSSPOSTER_X_ACCESS_TOKEN_SECRET is not set (set it, or CROSSPOSTER_X_ACCESS_TOKEN_SECRET_FILE to a file "
        "holding it)"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "not-utf8", "huge"])
def test_unusable_config_files_are_one_clear_line(kind: str, tmp_path: Path) -> None:
    path = {**_bad_files(tmp_path), "not-utf8": str(tmp_path / "c.yaml"),
            "huge": str(tmp_path / "big.yaml")}[kind]
    (tmp_path / "c.yaml").write_bytes(b"timezone: UTC\nlanguage: \xe9\n")
    (tmp_path / "big.yaml").write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert len(str(e.value).splitlines()) == 1, str(e.value)
    assert {"fifo": "FIFO", "dev-zero": "character device", "folder": "folder",
            "not-utf8": "line 2: not UTF-8 text (byte 0xe9)", "huge": "larger than"}[kind] in str(e.value)


def _cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:  # TIMING
    e = {"COLUMNS": "300", **env, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "crossposter", *args], env=e, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_")}


ARCHIVE = ("# Threads\n\n## Hello thread\n\nHello world, this is the first post.\n\n"
           "## Old thread\n\nPublished long ago by an older version.\n")


def _project(tmp_path: Path, url: str, schedule: str | None = None) -> Path:
    (tmp_path / "threads").mkdir(exist_ok=True)
    block = f"<!-- crossposter\nschedule: {schedule}\n-->\n" if schedule else ""
    (tmp_path / "threads" / "a.md").write_text(ARCHIVE.replace("## Hello thread\n", f"## Hello thread\n{block}"))
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text(f"""state_dir: state
archives: [threads/*.md]
daemon: {{log_format: json, heartbeat_interval: 1, watch_interval: 0.2, retry_later_attempts: 0}}
retry: {{attempts: 1}}
platforms:
  bluesky: {{handle: me.test, service: "{url}"}}
  mastodon: {{instance: "{url}"}}
  x: {{enabled: true, api_base: "{url}", upload_base: "{url}"}}
""")
    return cfg


@pytest.mark.parametrize("command", ["check", "post", "daemon", "status", "health"])
def test_unusable_secret_files_from_every_command(command: str, tmp_path: Path) -> None:
    """Each variable points at a different kind of unusable file; nothing hangs or prints a traceback.

    The commands that need the secrets (check, post, daemon) name every variable on its own line and
    exit non-zero; status and health do not need them (they read them only to redact) and still work.
    """
    bad = _bad_files(tmp_path)
    kinds = {"CROSSPOSTER_BLUESKY_PASSWORD": "fifo", "CROSSPOSTER_MASTODON_ACCESS_TOKEN": "dev-zero",
             "CROSSPOSTER_X_CONSUMER_KEY": "folder", "CROSSPOSTER_X_CONSUMER_SECRET": "not-utf8",
             "CROSSPOSTER_X_ACCESS_TOKEN": "huge", "CROSSPOSTER_X_ACCESS_TOKEN_SECRET": "empty"}
    env = {**_clean_env(), **{f"{name}_FILE": bad[kind] for name, kind in kinds.items()}}
    cfg = _project(tmp_path, "http://127.0.0.1:9")
    args = {"post": ["post", "threads/a.md", "--thread", "Hello thread"]}.get(command, [command])
    r = _cli(*args, "--config", str(cfg), env=env, cwd=tmp_path, timeout=60)
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    if command in ("status", "health"):
        assert r.returncode in (0, 1) and ("Hello thread" in out or "heartbeat" in out), out
        return
    assert r.returncode != 0, out
    for name, kind in kinds.items():
        lines = [line for line in out.splitlines() if f"{name}_FILE" in line]
        assert len(lines) == 1 and EXPECTED[kind] in lines[0], (name, out)


# --------------------------------------------------------------------------- the whole program, hostile server

SECRETS = {
    # via a file ending in a newline
    "CROSSPOSTER_BLUESKY_PASSWORD": "SEKRIT-bsky/pw+1=é\"q'\\z",
    # via the environment, with the trailing newline `echo token | base64 -d` leaves
    "CROSSPOSTER_MASTODON_ACCESS_TOKEN": "SEKRIT-masto/tok+2=\"q'\\z",
    "CROSSPOSTER_X_CONSUMER_KEY": "SEKRIT-xck/3+=ü'\"\\k",
    "CROSSPOSTER_X_CONSUMER_SECRET": "SEKRIT-xcs/4+é",
    "CROSSPOSTER_X_ACCESS_TOKEN": "SEKRIT-xat/5+é",
    "CROSSPOSTER_X_ACCESS_TOKEN_SECRET": "SEKRIT-xats/6=",
}


def _leaks(text: str) -> list[str]:
    """Every form of every secret found in `text`; also any trace of the word all of them start with."""
    found = [f"{name} as {form}" for name, value in SECRETS.items()
             for form, leaked in leak_forms(value).items() if leaked in text]
    found += [f"a piece of a secret ({piece})" for piece in ("SEKRIT", *_base64_cores("SEKRIT-"))
              if piece in text]
    return found


def _old_thread(tmp_path: Path):  # noqa: ANN202 - a ThreadInfo
    from crossposter.archive import read_archive
    from crossposter.daemon.watch import thread_info

    path = (tmp_path / "threads" / "a.md").resolve()
    return thread_info(path, read_archive(path).find("Old thread"), "UTC")


def _files_under(folder: Path) -> dict[str, str]:
    return {str(p): p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()}


def test_no_command_shows_or_stores_an_echoed_credential(tmp_path: Path) -> None:
    secret_file = tmp_path / "bluesky-password"
    secret_file.write_text(SECRETS["CROSSPOSTER_BLUESKY_PASSWORD"] + "\n")
    env = {**_clean_env(), **{k: v for k, v in SECRETS.items() if k != "CROSSPOSTER_BLUESKY_PASSWORD"},
           "CROSSPOSTER_BLUESKY_PASSWORD_FILE": str(secret_file)}
    env["CROSSPOSTER_MASTODON_ACCESS_TOKEN"] += "\n"
    outputs: dict[str, str] = {}
    state = tmp_path / "state"
    with echo_server() as server:
        due = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
        cfg = _project(tmp_path, server.url, schedule=due)

        r = _cli("check", "--config", str(cfg), env=env, cwd=tmp_path)
        outputs["check"] = r.stdout + r.stderr
        assert r.returncode == 1, outputs["check"]

        r = _cli("post", "threads/a.md", "--thread", "Hello thread", "--config", str(cfg), env=env, cwd=tmp_path)
        outputs["post"] = r.stdout + r.stderr
        assert r.returncode == 2, outputs["post"]

        # A state file as an older version wrote it: a message with the token in it, readable by all.
        state.mkdir(exist_ok=True)
        old = _old_thread(tmp_path)
        legacy = {"threads": {old.key: {"outcome": "failed", "sig": old.sig, "message":
                                        "HTTP 401: Invalid token " + SECRETS[TOKEN] + " ('Bearer "
                                        + SECRETS[TOKEN] + "\\n')"}}}
        (state / "daemon-state.json").write_text(json.dumps(legacy))
        (state / "daemon-state.json").chmod(0o644)
        r = _cli("status", "--format", "json", "--config", str(cfg), env=env, cwd=tmp_path)
        outputs["status before the daemon"] = r.stdout + r.stderr
        assert r.returncode == 0, outputs["status before the daemon"]

        log = tmp_path / "daemon.log"
        e = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])}
        with log.open("wb") as f:
            proc = subprocess.Popen([sys.executable, "-m", "crossposter", "daemon", "--config", str(cfg)], env=e,
                                    cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                entries = json.loads((state / "daemon-state.json").read_text()).get("threads", {})
                if any(k.endswith("::Hello thread") for k in entries) and (state / "heartbeat").exists():
                    break
                assert proc.poll() is None, log.read_text()
                time.sleep(0.3)
            else:
                pytest.fail("the daemon did not record the thread:\n" + log.read_text())
            heartbeat_mode = stat.S_IMODE((state / "heartbeat").stat().st_mode)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        outputs["daemon"] = log.read_text(encoding="utf-8", errors="replace")
        assert proc.returncode == 0, outputs["daemon"]

        r = _cli("status", "--config", str(cfg), env=env, cwd=tmp_path)
        outputs["status"] = r.stdout + r.stderr
        r = _cli("status", "--format", "json", "--config", str(cfg), env=env, cwd=tmp_path)
        outputs["status json"] = r.stdout + r.stderr
        r = _cli("health", "--config", str(cfg), env=env, cwd=tmp_path)
        outputs["health"] = r.stdout + r.stderr
        # a heartbeat that holds something it should not: health quotes what it cannot read
        (state / "heartbeat").write_text(json.dumps({"time": "Bearer " + SECRETS[TOKEN], "pid": 1}))
        r = _cli("health", "--config", str(cfg), env=env, cwd=tmp_path)
        outputs["health, odd heartbeat"] = r.stdout + r.stderr
        assert r.returncode == 1 and "cannot read the heartbeat" in r.stderr, r.stderr
        (state / "heartbeat").unlink()  # the test's own doing: not searched below

    problems = [f"{where}: {leak}" for where, text in outputs.items() for leak in _leaks(text)]
    for path, text in {**_files_under(state), **_files_under(tmp_path / "threads")}.items():
        problems += [f"{path}: {leak}" for leak in _leaks(text)]
    assert not problems, "\n".join(problems)

    # the test has teeth: the server got every credential that is sent, and its answers reached the outputs
    assert outputs["check"].count("HTTP 401") == 3 and outputs["post"].count("HTTP 401") == 3, outputs
    seen = set(server.seen)
    for name in ("CROSSPOSTER_BLUESKY_PASSWORD", "CROSSPOSTER_MASTODON_ACCESS_TOKEN", "CROSSPOSTER_X_CONSUMER_KEY",
                 "CROSSPOSTER_X_ACCESS_TOKEN"):
        assert SECRETS[name] in seen, (name, seen)
    stored = json.loads((state / "daemon-state.json").read_text())["threads"]
    hello = next(v for k, v in stored.items() if k.endswith("::Hello thread"))
    assert hello["outcome"] == "failed" and "HTTP 401" in hello["message"] and REDACTED in hello["message"], hello
    assert "HTTP 401" in outputs["daemon"] and "HTTP 401" in outputs["status json"]
    shown = {t["title"]: t for t in json.loads(outputs["status before the daemon"])["threads"]}
    assert shown["Old thread"]["daemon"]["message"].startswith("HTTP 401: Invalid token ***"), shown

    # state files are private, also the one an older version left readable by all
    assert stat.S_IMODE((state / "daemon-state.json").stat().st_mode) == 0o600
    assert heartbeat_mode == 0o600
    assert stored[old.key]["message"].startswith("HTTP 401: Invalid token ***"), stored
