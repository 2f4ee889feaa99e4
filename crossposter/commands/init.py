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


def render(platforms: list[PlatformName], answers: dict[str, str], timezone: str) -> str:
    """The file's text: a section per registered platform (each written by its config model, see
    config.PlatformSettings.init_section), enabled for the ones picked; `answers` by platform."""
    from crossposter.config import settings_model, yaml_str

    sections = "\n".join(settings_model(p)().init_section(p, p in platforms, answers.get(p, ""))
                          for p in registry.names())
    return f"""\
# crossposter configuration, written by `crossposter init`.
# Every option and its default: config.example.yaml in the crossposter repository.
#
# NO SECRET GOES IN THIS FILE (commit it beside your archive). Set these instead, in the
# environment of every crossposter command and of the daemon (or NAME_FILE = a file holding it):
{_secret_lines(platforms)}
# Then run `crossposter check`: it logs in for real and reads every thread.

# IANA time zone: `schedule --at "2030-01-15 09:00"` and queue slots are read in it.
timezone: {yaml_str(timezone)}

# Archive files the daemon, `status` and `check` read (relative to this file's folder).
archives:
  - threads/*.md

# The daemon's state, sessions and heartbeat (created if missing; keep it out of git).
state_dir: .crossposter

platforms:
{sections}
daemon:
  # Recurring slots that publish the next thread marked `queued: true`, e.g. "mon-fri 09:00".
  queue_slots: []
"""


def _secret_help(platform: str) -> list[tuple[str, str]]:
    """(variable, where a person gets it) for each of the platform's secrets (its registry entry and config model)."""
    from crossposter.config import settings_model

    helps = settings_model(platform).secret_help
    return [(name, helps.get(name, "")) for name in registry.get(platform).secret_variables]


def _secret_lines(platforms: list[PlatformName]) -> str:
    lines = [f"#   {name:<36} {what}" for p in platforms for name, what in _secret_help(p)]
    return "\n".join(lines) if lines else "#   (no platform enabled: no secret needed)"


def _ask(prompt: str, default: str) -> str:
    answer = input(f"{prompt} [{default}]: ").strip() if default else input(f"{prompt}: ").strip()
    return answer or default


def _interactive(platforms: list[PlatformName] | None, answers: dict[str, str | None],
                 timezone: str | None) -> tuple[list[PlatformName], dict[str, str | None], str]:
    from crossposter.config import settings_model

    known = ", ".join(registry.names())
    if platforms is None:
        while True:
            typed = _ask(f"Platforms to post to (comma-separated: {known})", "bluesky,mastodon")
            names = [n.strip().lower() for n in typed.split(",") if n.strip()]
            unknown = [n for n in names if n not in registry.names()]
            if names and not unknown:
                platforms = list(dict.fromkeys(names))  # type: ignore[arg-type]
                break
            print(f"  unknown: {', '.join(unknown) or '(none)'}; choose from {known}")
    answers = dict(answers)
    for p in registry.names():
        if p not in platforms:
            continue
        model = settings_model(p)
        if model.init_question and answers.get(p) is None:
            answers[p] = _ask(model.init_question, model.init_default)
    if timezone is None:
        timezone = _ask("Time zone for schedules (IANA name, e.g. Europe/Berlin)", "UTC")
    return platforms, answers, timezone


def run(platforms: list[PlatformName] | None, output: Path, answers: dict[str, str | None], timezone: str | None,
        interactive: bool | None = None) -> int:
    """`answers`: per platform, its config model's `init_question` answered on the command line (or None)."""
    from crossposter.config import settings_model

    if os.path.lexists(output):
        return fail(f"{output} already exists; not overwriting it. Edit it, or give another name with -o FILE.")
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive:
        try:
            platforms, answers, timezone = _interactive(platforms, answers, timezone)
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return fail("stopped; nothing was written")
    else:
        if not platforms:
            return fail(f"which platforms? Give -p {','.join(registry.names())} (any of them), or run "
                        "`crossposter init` in a terminal to be asked", 2)
        timezone = timezone or "UTC"
    given = {p: answers.get(p) or settings_model(p).init_default for p in registry.names()}
    text = render(platforms, given, timezone)

    from crossposter.config import ConfigError, load_config

    # written beside its final name and checked by the loader first: a typo (a time zone) is said now
    # and leaves no file behind, rather than a file that every later command refuses
    tmp = output.with_name(f".{output.name}.{os.getpid()}.init-tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        try:
            config = load_config(tmp)
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
    for p in platforms:
        for problem in config.platforms.section(p).missing():
            print(f"  fill in platforms.{p}.{problem.split(':', 1)[0]} in {output}")
    print("Next, set these environment variables (or NAME_FILE pointing at a file that holds the value):")
    for p in platforms:
        for name, what in _secret_help(p):
            print(f"  export {name}=...    # {what}")
    print(f"Then: crossposter check{'' if output == Path('crossposter.yaml') else f' -c {output}'}")
    return 0
