"""Configuration: a YAML file validated by pydantic models, secrets only from the environment.

Secrets never live in the YAML (it is often committed next to the archive);
each is read from `CROSSPOSTER_…` or from the file named by `CROSSPOSTER_…_FILE`
(container secrets) and held as `SecretStr` so it cannot leak through a repr.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from crossposter.platforms import registry
from crossposter.platforms.registry import PlatformName


class ConfigError(Exception):
    """One or more problems in the configuration, each naming the key."""

    def __init__(self, problems: list[str], source: Path | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__("\n".join(f"{where}{p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlatformSettings(_Strict):
    """A platform's section of the config (`platforms.<name>`): what every one has; each platform's model
    (its registry entry's `settings`) adds its own keys."""

    enabled: bool = False

    def account(self) -> str:
        """The account as people write it (the HTML preview's name, a dry run's links); "" when not known."""
        return ""

    def missing(self) -> list[str]:
        """Settings an enabled platform cannot publish without (`key: what to write`), besides its secrets."""
        return []

    def init_section(self, name: str, enabled: bool, answer: str) -> str:
        """The section `crossposter init` writes (YAML lines under `platforms:`); `answer` is what the person
        gave for `init_question` (the platform's account or server)."""
        return f"  {name}:\n    enabled: {_yaml_bool(enabled)}\n"

    #: what `crossposter init` asks about this platform (None: nothing), and the answer's default
    init_question: ClassVar[str | None] = None
    init_default: ClassVar[str] = ""
    #: where a person gets each of the platform's secrets (by variable name), said by `crossposter init`
    secret_help: ClassVar[dict[str, str]] = {}


def _yaml_bool(value: bool) -> str:
    return "true" if value else "false"


def yaml_str(value: str) -> str:
    """A YAML scalar that stays a string whatever the person typed (`on`, `1e3`, `#tag`, quotes)."""
    import json

    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted string


class BlueskyConfig(PlatformSettings):
    enabled: bool = True
    handle: str = ""
    service: str = "https://bsky.social"
    #: Bluesky's own limits; only lower them, never raise.
    max_graphemes: int = Field(300, ge=1, le=300)
    max_bytes: int = Field(3000, ge=1, le=3000)

    init_question: ClassVar[str | None] = "Bluesky handle (e.g. me.bsky.social)"
    secret_help: ClassVar[dict[str, str]] = {
        "CROSSPOSTER_BLUESKY_PASSWORD": "an app password: bsky.app > Settings > Privacy and security > App passwords"}

    def account(self) -> str:
        return self.handle

    def missing(self) -> list[str]:
        return [] if self.handle else ["handle: not set (the account handle, e.g. me.bsky.social)"]

    def init_section(self, name: str, enabled: bool, answer: str) -> str:
        return (f"  {name}:\n    enabled: {_yaml_bool(enabled)}\n"
                f"    # Your handle, e.g. me.bsky.social (required when enabled).\n    handle: {yaml_str(answer)}\n")


class MastodonConfig(PlatformSettings):
    enabled: bool = True
    instance: str = "https://mastodon.social"
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    #: Used by `preview` (no network); publishing reads the instance's real limit.
    max_characters: int = Field(500, ge=1)

    init_question: ClassVar[str | None] = "Mastodon server"
    init_default: ClassVar[str] = "https://mastodon.social"
    secret_help: ClassVar[dict[str, str]] = {
        "CROSSPOSTER_MASTODON_ACCESS_TOKEN": "your server > Preferences > Development > New application, "
                                             "scopes read:accounts read:statuses write:statuses write:media"}

    @field_validator("instance")
    @classmethod
    def _server_url(cls, v: str) -> str:
        """`mastodon.social` means https://mastodon.social; a profile link or another scheme is refused,
        since every request would go to the wrong place."""
        from urllib.parse import urlsplit

        url = v.strip()
        if "://" not in url:
            url = "https://" + url
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment:
            raise ValueError(f"{v!r} is not a server address; write just the server, e.g. https://mastodon.social")
        return f"{parts.scheme.lower()}://{parts.netloc}"

    def account(self) -> str:
        """The config names the instance, not the account (the token says which): a placeholder on that server."""
        from urllib.parse import urlsplit

        host = urlsplit(self.instance).hostname
        return f"you@{host}" if host else ""

    def init_section(self, name: str, enabled: bool, answer: str) -> str:
        if answer and "://" not in answer:
            answer = "https://" + answer
        return (f"  {name}:\n    enabled: {_yaml_bool(enabled)}\n    # Your server's address.\n"
                f"    instance: {yaml_str(answer.rstrip('/'))}\n"
                "    # public, unlisted, private (followers only) or direct.\n    visibility: public\n")


class XConfig(PlatformSettings):
    enabled: bool = False
    api_base: str = "https://api.x.com"
    upload_base: str = "https://api.x.com"
    #: The account's handle, used only to build links to posts.
    username: str = ""

    init_question: ClassVar[str | None] = "X username (without @)"
    secret_help: ClassVar[dict[str, str]] = {
        "CROSSPOSTER_X_CONSUMER_KEY": "developer.x.com app: API key",
        "CROSSPOSTER_X_CONSUMER_SECRET": "API key secret",
        "CROSSPOSTER_X_ACCESS_TOKEN": "access token (OAuth 1.0a user context, read and write)",
        "CROSSPOSTER_X_ACCESS_TOKEN_SECRET": "access token secret"}

    def account(self) -> str:
        return self.username

    def init_section(self, name: str, enabled: bool, answer: str) -> str:
        return (f"  {name}:\n    enabled: {_yaml_bool(enabled)}\n"
                f"    # Your username without @, used to build links to your posts.\n"
                f"    username: {yaml_str(answer)}\n")


def settings_model(platform: str) -> type[PlatformSettings]:
    """The model of `platform`'s config section (its registry entry's `settings`, "module:Class")."""
    from importlib import import_module

    module, _, name = registry.get(platform).settings.partition(":")
    model = getattr(import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, PlatformSettings)):
        raise TypeError(f"platform {platform!r}: settings {registry.get(platform).settings!r} is not a "
                        "PlatformSettings model")
    return model


class PlatformsConfig(BaseModel):
    """`platforms:`, one section per registered platform (each by its own model; see `settings_model`).

    Built from the registry when a config is read, so a platform registered later has its section too;
    a key that names no registered platform is refused like any unknown key.
    """

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        from pydantic import ValidationError
        from pydantic_core import InitErrorDetails

        if isinstance(data, PlatformsConfig):
            data = {name: getattr(data, name) for name in (data.model_extra or {})}
        if not isinstance(data, Mapping):
            return data  # pydantic's own error: "Input should be a valid dictionary"
        sections: dict[str, PlatformSettings] = {}
        errors: list[InitErrorDetails] = []
        for key in data:
            if key not in registry.names():
                errors.append(InitErrorDetails(type="extra_forbidden", loc=(str(key),), input=data[key]))
        for name in registry.names():
            model = settings_model(name)
            value = data.get(name, {})  # (`bluesky:` with nothing under it, None, is an error)
            try:
                sections[name] = value if isinstance(value, model) else model.model_validate(value)
            except ValidationError as e:
                errors.extend(InitErrorDetails(type=err["type"], loc=(name, *err["loc"]), input=err.get("input"),
                                               ctx=err.get("ctx", {})) for err in e.errors())  # type: ignore[misc]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return sections

    def section(self, platform: str) -> PlatformSettings:
        """`platform`'s section (its defaults, for a platform registered after this config was read)."""
        found = (self.model_extra or {}).get(platform)
        return found if found is not None else settings_model(platform)()


class SplitConfig(_Strict):
    #: Append "i/n" to every post; its width is counted against the limit.
    numbering: bool = False
    #: Post the `##` heading as the first line of the thread.
    post_title: bool = False


class RetryConfig(_Strict):
    attempts: int = Field(5, ge=1, le=20)
    base_delay: float = Field(1.0, ge=0)
    max_delay: float = Field(60.0, ge=0)
    #: Wait out a rate limit whose reset is at most this many seconds away; otherwise stop and resume later.
    max_rate_limit_wait: float = Field(900.0, ge=0)


class DaemonConfig(_Strict):
    #: A thread whose time passed while the daemon was down still goes out within this many seconds.
    misfire_grace: int = Field(3600, ge=0)
    log_format: Literal["plain", "json"] = "plain"
    heartbeat_interval: int = Field(30, ge=1)
    #: Recurring cron-like slots ("mon-fri 09:00") that publish the next queued thread.
    queue_slots: list[str] = Field(default_factory=list)
    #: How often a thread stopped by a transient error or rate limit is retried later.
    retry_later_attempts: int = Field(3, ge=0)
    retry_later_delay: int = Field(900, ge=1)
    #: Seconds between two looks (a cheap stat) at the archives for edits, new files and removed files.
    watch_interval: float = Field(1.0, ge=0.1, le=60)
    #: Publish from a child process started shortly before a thread is due, so the idle daemon
    #: does not hold the platform SDKs in memory (about 55 MB).
    publisher_process: bool = True

    @field_validator("queue_slots")
    @classmethod
    def _valid_slots(cls, v: list[str]) -> list[str]:
        from crossposter.timeparse import TimeError, parse_slot

        problems = []
        for i, text in enumerate(v):
            try:
                parse_slot(text)
            except TimeError as e:
                problems.append(f"[{i}] {e}")
        if problems:
            raise ValueError("; ".join(problems))
        return v


class BackupConfig(_Strict):
    """Where `crossposter backup` writes (`{platform}` is bluesky, mastodon or x)."""

    #: The archive a platform's threads go into, relative to the config file's folder.
    into: str = "threads/{platform}.md"
    #: The folder for downloaded media, relative to the archive's folder (as written in the archive).
    media: str = "media/{platform}"
    #: Threads written per archive write (a batch): smaller loses less to a crash, larger writes less often.
    batch_threads: int = Field(500, ge=1, le=100_000)

    @field_validator("into", "media")
    @classmethod
    def _pattern(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        try:
            v.format(platform="name")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"{v!r}: only {{platform}} can be filled in ({e})") from None
        if "\0" in v:
            raise ValueError("contains a NUL character")
        return v

#: `90`, `45s`, `10m`, `1h30m`, `2d`: a number alone is seconds
_DURATION = re.compile(r"\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?"
                       r"\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*", re.IGNORECASE)
_HASHTAG = re.compile(r"#\w+")


def parse_duration(value: object) -> float:
    """Seconds from a YAML value: a number, or a string like `45s`, `10m`, `1h30m`, `2d`.

    A mirror's `every: 5` would otherwise be five seconds where the author meant five minutes;
    the units are short to write and impossible to misread.
    """
    if isinstance(value, bool):
        raise ValueError("a duration like 90s, 10m, 1h30m or 2d (or a number of seconds), not true/false")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.fullmatch(value)
        if value.strip() and m and any(m.groups()):
            d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return ((d * 24 + h) * 60 + mi) * 60 + s
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError("a duration like 90s, 10m, 1h30m or 2d (or a number of seconds)")


def _duration(minimum: float, maximum: float, what: str) -> classmethod:
    """A field validator turning a duration into seconds within [minimum, maximum]."""

    def check(cls: type, v: object) -> float:
        seconds = parse_duration(v)
        if not minimum <= seconds <= maximum:
            raise ValueError(f"{what} must be between {minimum:g} s and {maximum:g} s")
        return seconds

    return classmethod(check)


def _registered(name: object) -> str:
    """A platform's name, as the registry knows it now (a platform registered later counts too)."""
    if not isinstance(name, str) or name not in registry.names():
        names = [repr(n) for n in registry.names()]
        raise ValueError(f"Input should be {', '.join(names[:-1])} or {names[-1]}")
    return name


#: a registered platform's name (checked at validation time against the registry, not a fixed Literal)
Platform = Annotated[str, BeforeValidator(_registered)]


class MirrorConfig(_Strict):
    """`mirror:`: the daemon backs up one account and publishes its new threads to the others."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Platform = Field(alias="from")
    to: list[Platform] = Field(min_length=1)
    #: seconds between two backups of the source account
    every: float = 300.0
    #: a thread is published once its newest post is this many seconds old
    settle: float = 600.0
    #: the archive mirrored threads are backed up into; None: the backup's own (`backup.into`)
    into: str | None = None
    #: a thread with this hashtag in any of its posts is not mirrored
    skip_tag: str | None = None
    #: on the mirror's first start, also mirror threads started since this time (default: none before the start)
    backfill: datetime | None = None
    #: after downtime, threads started within this many seconds before the restart are still mirrored
    catch_up: float = 86400.0
    #: edited source posts: `report` (status and log, once each; nothing is ever republished), or `update`:
    #: also give the Mastodon post the edited text, when it is exactly one post there (see mirror/propagate.py)
    edits: Literal["report", "update"] = "report"
    #: deleted source posts: `report` (status and log, once each; the mirrored copies stay on the targets), or
    #: `delete`: also delete the posts the mirror published from it on every target (see mirror/propagate.py)
    deletions: Literal["report", "delete"] = "report"
    #: edits and deletions are looked for in posts made at most this long ago, of threads with a post that recent
    edits_within: float = 2 * 86400.0
    #: how often they are looked for (one read of the source over `edits_within`, in the backup's child process)
    edits_every: float = 1800.0
    #: hashtags taken out of the text posted to the targets (never out of the archive)
    remove_tags: list[str] = Field(default_factory=list)

    _every = field_validator("every", mode="before")(_duration(1, 7 * 86400, "every"))
    _settle = field_validator("settle", mode="before")(_duration(0, 7 * 86400, "settle"))
    _catch_up = field_validator("catch_up", mode="before")(_duration(0, 366 * 86400, "catch_up"))
    _edits_within = field_validator("edits_within", mode="before")(_duration(0, 366 * 86400, "edits_within"))
    _edits_every = field_validator("edits_every", mode="before")(_duration(1, 7 * 86400, "edits_every"))

    @field_validator("to")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({p for p in v if v.count(p) > 1})
        if dup:
            raise ValueError(f"{', '.join(dup)} listed twice")
        return v

    @field_validator("skip_tag")
    @classmethod
    def _tag(cls, v: str | None) -> str | None:
        if v is not None and not _HASHTAG.fullmatch(v):
            raise ValueError("a hashtag like '#nomirror' (quote it in YAML: a bare # starts a comment)")
        return v

    @field_validator("remove_tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not _HASHTAG.fullmatch(t)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: hashtags like '#xpost' (quote them in YAML: a bare # "
                             "starts a comment)")
        return v

    @field_validator("backfill")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        from crossposter.timeparse import check_range

        # a date without an offset is UTC here: the config's `timezone` is not known to this field
        v = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
        return check_range(v, "backfill")

    @model_validator(mode="after")
    def _not_to_itself(self) -> MirrorConfig:
        if self.from_ in self.to:
            raise ValueError(f"`to` lists {self.from_}, the platform mirrored from; list only the others")
        if self.skip_tag and self.skip_tag.casefold() in {t.casefold() for t in self.remove_tags}:
            raise ValueError(f"{self.skip_tag} is both `skip_tag` (such a thread is not mirrored) and in "
                             "`remove_tags` (taken out of a mirrored thread); keep it in one of them")
        return self


class Config(_Strict):
    timezone: str = "UTC"
    language: str = "en"
    state_dir: Path = Path(".crossposter")
    archives: list[str] = Field(default_factory=lambda: ["threads/*.md"])
    platforms: PlatformsConfig = Field(default_factory=lambda: PlatformsConfig.model_validate({}))
    split: SplitConfig = SplitConfig()
    retry: RetryConfig = RetryConfig()
    daemon: DaemonConfig = DaemonConfig()
    backup: BackupConfig = BackupConfig()
    #: The cross-posting bot (see MirrorConfig); None: the daemon only publishes what is scheduled or queued.
    mirror: MirrorConfig | None = None
    #: Folder the config file lives in: relative paths are resolved against it.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name like Europe/Berlin)") from e
        return v

    @model_validator(mode="after")
    def _mirror_platforms_enabled(self) -> Config:
        if self.mirror is not None:
            off = [p for p in (self.mirror.from_, *self.mirror.to) if not self.platforms.section(p).enabled]
            if off:
                raise ValueError(f"mirror: {', '.join(off)} not enabled; set platforms.<name>.enabled: true "
                                 "for the platform mirrored from and every one in `to`")
        return self

    def enabled_platforms(self) -> list[PlatformName]:
        return [name for name in registry.names() if self.platforms.section(name).enabled]

    def resolve(self, p: Path | str) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def state_path(self) -> Path:
        return self.resolve(self.state_dir)

    def archive_paths(self) -> list[Path]:
        """Every archive file the globs match, sorted, without duplicates."""
        seen: dict[Path, None] = {}
        for pattern in self.archives:
            pat = Path(pattern).expanduser()
            if pat.is_absolute():
                matches = sorted(Path(pat.anchor).glob(str(pat.relative_to(pat.anchor))))
            else:
                matches = sorted(self.base_dir.glob(pattern))
            for m in matches:
                if m.is_file():
                    seen.setdefault(m.resolve(), None)
        return list(seen)


#: A secret file holds one short line; anything bigger is the wrong file (and is not read whole).
SECRET_FILE_MAX_BYTES = 64 * 1024
#: A config file is a page of YAML; past this size it is the wrong file.
CONFIG_FILE_MAX_BYTES = 1024 * 1024

_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class FileProblem(Exception):
    """Why a small file could not be read, in words that fit after its name.

    `denied` is set when the file exists but the user running crossposter may not read it:
    the fix then is the file's owner or mode, not its content.
    """

    def __init__(self, message: str, *, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied


def read_small_file(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, without ever blocking or reading more.

    Why so careful: these paths come from the environment and the command line, and a FIFO
    would block `open` forever, `/dev/zero` would fill memory, a folder raises IsADirectoryError
    in the middle of a command. The type is checked with `stat` before opening (opening some
    devices has side effects), the file is opened non-blocking and checked again on the open
    descriptor (it may have been swapped in between), and at most `max_bytes + 1` bytes are read.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileProblem("does not exist") from None
    except OSError as e:
        raise FileProblem(f"cannot be read ({e.strerror or e})", denied=isinstance(e, PermissionError)) from None
    _check_kind(st, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise FileProblem(f"cannot be read ({e.strerror or e})", denied=isinstance(e, PermissionError)) from None
    try:
        _check_kind(os.fstat(fd), max_bytes)
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise FileProblem(f"cannot be read ({e.strerror or e})", denied=isinstance(e, PermissionError)) from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise FileProblem(f"is larger than {max_bytes} bytes")
    return b"".join(chunks)


def _check_kind(st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "not a regular file")
        raise FileProblem(f"is {kind}, not a regular file")
    if st.st_size > max_bytes:
        raise FileProblem(f"is {st.st_size} bytes, larger than {max_bytes}")


def _bad_character(value: str) -> str | None:
    """What is wrong with a character of a secret, if anything (never the character of the secret itself)."""
    import unicodedata

    for c in value:
        category = unicodedata.category(c)
        if category == "Cs":
            return "is not valid UTF-8"
        if c in "\r\n\v\f\x85\u2028\u2029":
            return "has a line break inside; a secret is a single line"
        if category in ("Cc", "Cf", "Zl", "Zp"):
            return f"has a control character inside (U+{ord(c):04X})"
    return None


def _clean_secret(label: str, value: str, fix: str) -> str:
    """`value` without surrounding white space; ConfigError (naming `label`, never the value) when unusable.

    White space around a secret is never part of it and very often there by accident (`echo`
    adds a newline, so do editors): sent as is, it makes a header the HTTP library refuses,
    quoting the value in its error. Inside, a line break or control character is a mistake too
    (two secrets in one file, a pasted terminal escape); it is refused rather than guessed at.
    """
    from crossposter.redact import MIN_SECRET_LENGTH

    value = value.strip()
    if not value:
        raise ConfigError([f"{label} is empty ({fix})"])
    problem = _bad_character(value)
    if problem:
        raise ConfigError([f"{label} {problem} ({fix})"])
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError([f"{label} is {len(value)} character(s) long; no platform issues credentials that "
                           f"short, and one could not be hidden from logs ({fix})"])
    return value


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> SecretStr | None:
    """The secret `name` from the environment, or from the file `name_FILE` points at; None when neither is set.

    Surrounding white space is stripped; an unusable value (empty file, a line break inside, a file
    that is not a small UTF-8 regular file) is a ConfigError naming the variable, never the value.
    An empty variable counts as not set, so that `NAME=` in a compose file lets `NAME_FILE` speak.
    Values read from the process's own environment are registered for redaction at once.
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value:
        secret = _clean_secret(name, value, f"set {name} to the secret alone")
    else:
        file_name = env.get(f"{name}_FILE")
        if not file_name:
            return None
        label = f"{name}_FILE: {file_name}"
        fix = f"put the secret alone in the file {name}_FILE names"
        try:
            raw = read_small_file(file_name, SECRET_FILE_MAX_BYTES)
        except FileProblem as e:
            if e.denied:
                fix = f"let user id {os.getuid()}, which crossposter runs as, read it (owner or mode)"
            raise ConfigError([f"{label} {e} ({fix})"]) from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ConfigError([f"{label} is not UTF-8 text ({fix})"]) from None
        secret = _clean_secret(label, text, fix)
    if environ is None:
        from crossposter.redact import register

        register([secret])
    return SecretStr(secret)


def platform_secrets(platform: PlatformName, environ: Mapping[str, str] | None = None) -> dict[str, SecretStr]:
    """All secrets of a platform; raises ConfigError naming every missing or unusable variable."""
    found: dict[str, SecretStr] = {}
    problems: list[str] = []
    for name in registry.get(platform).secret_variables:
        try:
            value = read_secret(name, environ)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        if value is None:
            problems.append(f"{name} is not set (set it, or {name}_FILE to a file holding it)")
        else:
            found[name] = value
    if problems:
        raise ConfigError([f"platforms.{platform}: {m}" for m in problems])
    return found


def missing_settings(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """What an enabled platform still needs before it can publish: secrets and required settings.

    Separate from `load_config` because `preview` and `status` work without secrets; `check`
    and the daemon call this so a missing secret is reported at start-up, not at 3 a.m.
    """
    problems: list[str] = []
    for platform in config.enabled_platforms():
        try:
            platform_secrets(platform, environ)
        except ConfigError as e:
            problems.extend(e.problems)
    for platform in config.enabled_platforms():
        problems.extend(f"platforms.{platform}.{m}" for m in config.platforms.section(platform).missing())
    return problems


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every configured secret value, so logs can redact them wherever they might appear.

    An unusable one is skipped: the commands that need it report it, and its value is unknown.
    """
    values: list[str] = []
    for spec in registry.specs():
        for name in spec.secret_variables:
            try:
                value = read_secret(name, environ)
            except ConfigError:
                continue
            if value is not None and value.get_secret_value():
                values.append(value.get_secret_value())
    return values


def _format_error(err: dict) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    if loc == "(top level)" and err.get("type") == "value_error":
        return str(err.get("msg", "")).removeprefix("Value error, ")  # a check across sections names its keys
    if err.get("type") == "extra_forbidden":
        return f"{loc}: unknown key (check the spelling against config.example.yaml)"
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{loc}: {msg} (got {err.get('input')!r})" if "input" in err and not isinstance(
        err.get("input"), dict
    ) else f"{loc}: {msg}"


def find_config_file(explicit: Path | str | None = None) -> Path | None:
    """--config, then $CROSSPOSTER_CONFIG, then ./crossposter.yaml, then the user config directory."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("CROSSPOSTER_CONFIG")
    if env:
        return Path(env)
    local = Path("crossposter.yaml")
    if local.is_file():
        return local
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    user = xdg / "crossposter" / "config.yaml"
    return user if user.is_file() else None


def config_places() -> list[str]:
    """Where `find_config_file` looks, in its order, for messages that say where nothing was found."""
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return ["$CROSSPOSTER_CONFIG (not set)", str(Path.cwd() / "crossposter.yaml"), str(xdg / "crossposter" / "config.yaml")]


def load_config(path: Path | str, *, require_secrets: bool = False) -> Config:
    """Load and validate a config file; every problem is reported at once, each naming its key.

    With `require_secrets`, a missing secret of an enabled platform is one more problem.
    """
    import yaml
    from pydantic import ValidationError

    from crossposter import safeyaml

    path = Path(path)
    try:
        data = read_small_file(path, CONFIG_FILE_MAX_BYTES)
    except FileProblem as e:
        if str(e) == "does not exist":
            raise ConfigError([f"config file not found: {path}"]) from None
        raise ConfigError([f"config file {path} {e}"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError([f"line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as "
                           "UTF-8"], path) from None
    try:
        raw = safeyaml.load(text)  # safe_load without aliases or deep nesting
    except safeyaml.ShapeError as e:
        raise ConfigError([f"line {e.line + 1}: {e.problem}"], path) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError([f"{where}not valid YAML: {getattr(e, 'problem', e)}"], path) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["the file must be a YAML mapping of keys to values"], path)
    if "base_dir" in raw:
        raise ConfigError(["base_dir: unknown key (check the spelling against config.example.yaml)"], path)
    try:
        config = Config.model_validate({**raw, "base_dir": path.resolve().parent})
    except ValidationError as e:
        raise ConfigError([_format_error(err) for err in e.errors()], path) from None
    if require_secrets:
        problems = missing_settings(config)
        if problems:
            raise ConfigError(problems, path)
    return config


def default_config() -> Config:
    """The config `preview` uses without --config: every platform at its default limits."""
    cfg = Config()
    for name in registry.names():
        cfg.platforms.section(name).enabled = True
    return cfg


def config_for_command(explicit: Path | str | None, *, required: bool = False) -> Config:
    """The config a command runs with: the file `find_config_file` finds, else the defaults.

    `required` commands (the daemon, `check`) refuse to guess: without a file they would
    watch `threads/*.md` of whatever directory they happen to start in.
    """
    path = find_config_file(explicit)
    if path is None:
        if required:
            raise ConfigError([
                "no config file: pass --config FILE, set CROSSPOSTER_CONFIG, or create ./crossposter.yaml "
                "(see config.example.yaml)"
            ])
        return Config()
    return load_config(path)
