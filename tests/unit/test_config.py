"""Config: the example documents every option, errors name their key, secrets come only from the environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from crossposter.config import (
    Config,
    ConfigError,
    config_for_command,
    find_config_file,
    load_config,
    missing_settings,
    platform_secrets,
    read_secret,
    secret_values,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        path = f"{prefix}{name}"
        out.append(path)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _field_paths(ann, f"{path}.")
    return out


def test_example_loads_and_has_defaults() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.timezone == "UTC"
    assert cfg.daemon.misfire_grace == 3600
    assert cfg.base_dir == ROOT
    # The example's values are the defaults: what the comments say is what you get without the key.
    assert cfg.model_dump() == Config(base_dir=ROOT).model_dump()


def test_example_documents_every_field() -> None:
    """Each model field appears as a key in the example, under its section, with a comment nearby."""
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    keys: dict[str, int] = {}
    stack: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([a-z_]+):", line)
        if not m:
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([s for _, s in stack] + [m.group(2)])
        keys[path] = i
        stack.append((indent, m.group(2)))
    missing = [p for p in _field_paths(Config) if p not in keys]
    assert not missing, f"config.example.yaml does not document: {missing}"
    for path, i in keys.items():
        if path in ("platforms",) or path.count(".") == 1 and path.startswith("platforms."):
            continue  # section headers
        else:
            # every option: a comment close above it
            above = lines[max(0, i - 6):i]
            assert any(a.strip().startswith("#") for a in above), f"{path} has no comment above it"


def test_every_secret_is_documented_in_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    from crossposter.platforms import registry

    for spec in registry.specs():
        for name in spec.secret_variables:
            assert name in text


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "crossposter.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    p = _write(tmp_path, "timezone: UTC\ndaemon:\n  misfire_grace: 10\n  heartbeet_interval: 5\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.problems == ["daemon.heartbeet_interval: unknown key (check the spelling against "
                                "config.example.yaml)"]
    assert str(p) in str(e.value)


def test_each_problem_is_one_message(tmp_path: Path) -> None:
    p = _write(tmp_path, "timezone: Mars/Olympus\nplatforms:\n  mastodon:\n    visibility: everyone\n"
                         "daemon:\n  misfire_grace: soon\n  queue_slots: ['mon-fri 9am', 'daily 18:00']\n"
                         "bogus: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    problems = e.value.problems
    assert len(problems) == 5, problems
    joined = "\n".join(problems)
    for key in ("timezone:", "platforms.mastodon.visibility:", "daemon.misfire_grace:", "daemon.queue_slots:",
                "bogus:"):
        assert sum(line.startswith(key) for line in problems) == 1, (key, problems)
    assert "Mars/Olympus" in joined and "IANA" in joined
    assert "'mon-fri 9am'" in joined and "mon-fri 09:00" in joined  # the slot error quotes the grammar


def test_bad_yaml_gives_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "timezone: UTC\narchives: [a.md\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "line" in str(e.value) and "YAML" in str(e.value)


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(Path("/nonexistent/crossposter.yaml"))


def test_missing_secrets_one_message_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CROSSPOSTER_BLUESKY_PASSWORD", "CROSSPOSTER_MASTODON_ACCESS_TOKEN",
                "CROSSPOSTER_MASTODON_ACCESS_TOKEN_FILE", "CROSSPOSTER_BLUESKY_PASSWORD_FILE"):
        monkeypatch.delenv(var, raising=False)
    p = _write(tmp_path, "platforms:\n  bluesky: {handle: me.test}\n")
    cfg = load_config(p)  # secrets are not needed to load (preview, status)
    with pytest.raises(ConfigError) as e:
        load_config(p, require_secrets=True)
    assert len(e.value.problems) == 2
    assert any("platforms.bluesky" in m and "CROSSPOSTER_BLUESKY_PASSWORD" in m for m in e.value.problems)
    assert any("platforms.mastodon" in m and "CROSSPOSTER_MASTODON_ACCESS_TOKEN" in m for m in e.value.problems)
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", "app-pass-1234")
    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", "tok-5678")
    assert missing_settings(cfg) == []


def test_bluesky_handle_required_when_enabled(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "platforms:\n  mastodon: {enabled: false}\n"))
    env = {"CROSSPOSTER_BLUESKY_PASSWORD": "app-pass-1234"}
    assert missing_settings(cfg, env) == ["platforms.bluesky.handle: not set (the account handle, e.g. "
                                          "me.bsky.social)"]


def test_secret_from_file_and_never_in_repr(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("s3cret-value\n")
    env = {"CROSSPOSTER_BLUESKY_PASSWORD_FILE": str(f)}
    value = read_secret("CROSSPOSTER_BLUESKY_PASSWORD", env)
    assert value is not None and value.get_secret_value() == "s3cret-value"
    assert "s3cret" not in repr(value) and "s3cret" not in str(platform_secrets("bluesky", env))
    assert secret_values(env) == ["s3cret-value"]
    with pytest.raises(ConfigError, match="CROSSPOSTER_BLUESKY_PASSWORD_FILE: .*/no does not exist"):
        read_secret("CROSSPOSTER_BLUESKY_PASSWORD", {"CROSSPOSTER_BLUESKY_PASSWORD_FILE": str(tmp_path / "no")})


def test_unreadable_secret_file_says_who_must_read_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret file the user cannot read (mode 0600, another owner) is a permission fix, not a content one."""
    import os

    f = tmp_path / "pw"
    f.write_text("unreadable-secret\n")
    real_open = os.open

    def denied(path, *args, **kwargs):  # root reads any file, so the refusal is simulated where it happens
        if str(path) == str(f):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(ConfigError) as info:
        read_secret("CROSSPOSTER_BLUESKY_PASSWORD", {"CROSSPOSTER_BLUESKY_PASSWORD_FILE": str(f)})
    message = str(info.value)
    assert f"CROSSPOSTER_BLUESKY_PASSWORD_FILE: {f} cannot be read (Permission denied)" in message
    assert f"let user id {os.getuid()}, which crossposter runs as, read it" in message
    assert "put the secret alone" not in message and "unreadable-secret" not in message


def test_secret_in_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"platforms\.bluesky\.password: unknown key"):
        load_config(_write(tmp_path, "platforms:\n  bluesky: {password: hunter2}\n"))


def test_find_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    user = home / ".config" / "crossposter" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("timezone: Europe/Berlin\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("CROSSPOSTER_CONFIG", raising=False)
    assert find_config_file() == user
    (work / "crossposter.yaml").write_text("timezone: UTC\n")
    assert find_config_file() == Path("crossposter.yaml")
    monkeypatch.setenv("CROSSPOSTER_CONFIG", str(tmp_path / "env.yaml"))
    assert find_config_file() == tmp_path / "env.yaml"
    assert find_config_file(tmp_path / "explicit.yaml") == tmp_path / "explicit.yaml"
    monkeypatch.delenv("CROSSPOSTER_CONFIG")
    (work / "crossposter.yaml").unlink()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert find_config_file() is None
    assert config_for_command(None).timezone == "UTC"
    with pytest.raises(ConfigError, match="no config file"):
        config_for_command(None, required=True)


def test_paths_relative_to_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "threads").mkdir()
    (tmp_path / "threads" / "b.md").write_text("## B\n")
    (tmp_path / "threads" / "a.md").write_text("## A\n")
    (tmp_path / "threads" / "notes.txt").write_text("x")
    p = _write(tmp_path, "state_dir: st\narchives: ['threads/*.md', 'threads/a.md']\n")
    monkeypatch.chdir("/")
    cfg = load_config(p)
    assert cfg.state_path == tmp_path / "st"
    assert cfg.archive_paths() == [tmp_path / "threads" / "a.md", tmp_path / "threads" / "b.md"]


def test_queue_slot_grammar_accepted(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "daemon:\n  queue_slots: ['mon-fri 09:00', 'sat 10:30', 'daily 18:00', "
                                       "'weekends 08:00,20:15', 'mon,wed,fri 07:05']\n"))
    assert len(cfg.daemon.queue_slots) == 5
