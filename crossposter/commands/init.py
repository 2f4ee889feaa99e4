"""`crossposter init`: a first config file, commented, for the platforms the person picked.

It writes no secret, ever: the file is meant to be committed beside the archive, and the
credentials live in environment variables (or `_FILE` secrets) that it names at the end. It
refuses to overwrite: a config someone has tuned is worth more than a fresh template.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from crossposter.messages import fail
from crossposter.platforms import registry
from crossposter.platforms.registry import PlatformName

#: The platforms the template below writes a section for (the config's sections: see config.PlatformsConfig)
PLATFORMS = registry.BUILTIN

#: What each platform's secrets are and where a person gets them (the README walkthrough has the steps).
SECRETS = {
    "bluesky": [("CROSSPOSTER_BLUESKY_PASSWORD", "an app password: bsky.app > Settings > Privacy and security > "
                 "App passwords")],
    "mastodon": [("CROSSPOSTER_MASTODON_ACCESS_TOKEN", "your server > Preferences > Development > New application, "
                  "scopes read:accounts read:statuses write:statuses write:media")],
    "x": [("CROSSPOSTER_X_CONSUMER_KEY", "developer.x.com app: API key"),
          ("CROSSPOSTER_X_CONSUMER_SECRET", "API key secret"),
          ("CROSSPOSTER_X_ACCESS_TOKEN", "access token (OAuth 1.0a user context, read and write)"),
          ("CROSSPOSTER_X_ACCESS_TOKEN_SECRET", "access token secret")],
}


def _quote(value: str) -> str:
    """A YAML scalar that stays a string whatever the person typed (`on`, `1e3`, `#tag`, quotes)."""
    import json

    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted string


def render(platforms: list[PlatformName], bluesky_handle: str, mastodon_instance: str, x_username: str,
           timezone: str) -> str:
    on = {p: ("true" if p in platforms else "false") for p in PLATFORMS}
    return f"""\
# crossposter configuration, written by `crossposter init`.
# Every option and its default: config.example.yaml in the crossposter repository.
#
# NO SECRET GOES IN THIS FILE (commit it beside your archive). Set these instead, in the
# environment of every crossposter command and of the daemon (or NAME_FILE = a file holding it):
{_secret_lines(platforms)}
# Then run `crossposter check`: it logs in for real and reads every thread.

# IANA time zone: `schedule --at "2030-01-15 09:00"` and queue slots are read in it.
timezone: {_quote(timezone)}

# Archive files the daemon, `status` and `check` read (relative to this file's folder).
archives:
  - threads/*.md

# The daemon's state, sessions and heartbeat (created if missing; keep it out of git).
state_dir: .crossposter

platforms:
  bluesky:
    enabled: {on["bluesky"]}
    # Your handle, e.g. me.bsky.social (required when enabled).
    handle: {_quote(bluesky_handle)}

  mastodon:
    enabled: {on["mastodon"]}
    # Your server's address.
    instance: {_quote(mastodon_instance)}
    # public, unlisted, private (followers only) or direct.
    visibility: public

  x:
    enabled: {on["x"]}
    # Your username without @, used to build links to your posts.
    username: {_quote(x_username)}

daemon:
  # Recurring slots that publish the next thread marked `queued: true`, e.g. "mon-fri 09:00".
  queue_slots: []
"""


def _secret_lines(platforms: list[PlatformName]) -> str:
    lines = [f"#   {name:<36} {what}" for p in platforms for name, what in SECRETS[p]]
    return "\n".join(lines) if lines else "#   (no platform enabled: no secret needed)"


def _ask(prompt: str, default: str) -> str:
    answer = input(f"{prompt} [{default}]: ").strip() if default else input(f"{prompt}: ").strip()
    return answer or default


def _interactive(platforms: list[PlatformName] | None, handle: str | None, instance: str | None, username: str | None,
                 timezone: str | None) -> tuple[list[str], str, str, str, str]:
    if platforms is None:
        while True:
            typed = _ask("Platforms to post to (comma-separated: bluesky, mastodon, x)", "bluesky,mastodon")
            names = [n.strip().lower() for n in typed.split(",") if n.strip()]
            unknown = [n for n in names if n not in PLATFORMS]
            if names and not unknown:
                platforms = list(dict.fromkeys(names))
                break
            print(f"  unknown: {', '.join(unknown) or '(none)'}; choose from bluesky, mastodon, x")
    if "bluesky" in platforms and handle is None:
        handle = _ask("Bluesky handle (e.g. me.bsky.social)", "")
    if "mastodon" in platforms and instance is None:
        instance = _ask("Mastodon server", "https://mastodon.social")
    if "x" in platforms and username is None:
        username = _ask("X username (without @)", "")
    if timezone is None:
        timezone = _ask("Time zone for schedules (IANA name, e.g. Europe/Berlin)", "UTC")
    return platforms, handle or "", instance or "https://mastodon.social", username or "", timezone


def run(platforms: list[PlatformName] | None, output: Path, bluesky_handle: str | None, mastodon_instance: str | None,
        x_username: str | None, timezone: str | None, interactive: bool | None = None) -> int:
    if os.path.lexists(output):
        return fail(f"{output} already exists; not overwriting it. Edit it, or give another name with -o FILE.")
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive:
        try:
            platforms, handle, instance, username, timezone = _interactive(
                platforms, bluesky_handle, mastodon_instance, x_username, timezone)
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return fail("stopped; nothing was written")
    else:
        if not platforms:
            return fail("which platforms? Give -p bluesky,mastodon,x (any of them), or run `crossposter init` "
                        "in a terminal to be asked", 2)
        handle, username = bluesky_handle or "", x_username or ""
        instance = mastodon_instance or "https://mastodon.social"
        timezone = timezone or "UTC"
    if instance and "://" not in instance:
        instance = "https://" + instance
    text = render(platforms, handle, instance.rstrip("/"), username, timezone)

    from crossposter.config import ConfigError, load_config

    # written beside its final name and checked by the loader first: a typo (a time zone) is said now
    # and leaves no file behind, rather than a file that every later command refuses
    tmp = output.with_name(f".{output.name}.{os.getpid()}.init-tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        try:
            load_config(tmp)
        except ConfigError as e:
            return fail("\n".join(["nothing written: the answers give a config crossposter would refuse:",
                                   *e.problems]), 2)
        try:
            os.link(tmp, output)  # fails if the file appeared meanwhile: never overwrite
        except FileExistsError:
            return fail(f"{output} already exists; not overwriting it")
    except OSError as e:
        return fail(f"cannot write {output}: {e.strerror or e}")
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {output} ({', '.join(platforms)}); no secret is in it.")
    missing = [p for p, v in (("bluesky", handle), ("x", username)) if p in platforms and not v]
    for p in missing:
        print(f"  fill in platforms.{p}.{'handle' if p == 'bluesky' else 'username'} in {output}")
    print("Next, set these environment variables (or NAME_FILE pointing at a file that holds the value):")
    for p in platforms:
        for name, what in SECRETS[p]:
            print(f"  export {name}=...    # {what}")
    print(f"Then: crossposter check{'' if output == Path('crossposter.yaml') else f' -c {output}'}")
    return 0
