"""The `crossposter` command line. Option parsing only: each command lives in `crossposter.commands.*`.

argparse rather than click or typer: `crossposter preview` is the first thing every
user runs and must start within a quarter of a second; click's import alone took
~20 ms of that budget and typer's (it pulls in pydantic) far more, for nothing
argparse does not do (measured in benchmarks/cold_start.py). Usage errors exit 2,
like every other command-line mistake here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from crossposter.platforms import registry
from crossposter.platforms.registry import PlatformName


def _file_path(value: str) -> Path:
    """A file to read or write: a folder here is a mistake worth stopping for."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a folder; give a file")
    return path


class _Version(argparse.Action):
    """`--version`, reading the installed version only when asked (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="Show the version and exit.")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"crossposter {version('crossposter')}")
        except PackageNotFoundError:
            print("crossposter (not installed: running from a source tree)")
        parser.exit()


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=_file_path, default=None, metavar="FILE",
                        help="Config file (default: $CROSSPOSTER_CONFIG, ./crossposter.yaml, then the user "
                             "config folder).")


class _Platforms(argparse.Action):
    """`-p bluesky,x` and `-p bluesky -p x` alike: people type both, and both mean the same."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        names = [n.strip().lower() for n in str(values).split(",") if n.strip()]
        known = registry.names()
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            parser.error(f"{option_string} {values!r}: unknown platform {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(known)} (comma-separated or repeated)")
        chosen = getattr(namespace, self.dest) or []
        setattr(namespace, self.dest, list(dict.fromkeys([*chosen, *names])))


def _platform_option(parser: argparse.ArgumentParser, help: str = "Only these platforms") -> None:
    parser.add_argument("--platform", "-p", dest="platforms", action=_Platforms, default=None,
                        metavar="NAME[,NAME]",
                        help=f"{help}: {', '.join(registry.names())}; comma-separated or repeated (-p bluesky,x).")


def _thread_option(parser: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    parser.add_argument("--thread", "-t", required=required, default=None, metavar="TITLE", help=help)


def _command(sub: argparse._SubParsersAction, name: str, summary: str, details: str = "",
             examples: Sequence[str] = ()) -> argparse.ArgumentParser:
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    return sub.add_parser(name, help=summary, description=f"{summary}\n\n{details}".strip(), epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossposter",
                                     description="Cross-post Markdown thread archives to Bluesky, Mastodon and X.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _command(sub, "preview", "Show how each thread splits on each platform. No credentials, no network.",
                 "PATHS are archive files or folders of *.md files (default: threads/, or the config's archives).\n"
                 "Exit 1 when a thread has errors (each named with its file and line).",
                 ['crossposter preview threads/example.md -t "Counting other scripts" -p bluesky,x',
                  "crossposter preview --open            # the HTML page, in a browser"])
    p.add_argument("paths", nargs="*", type=Path, metavar="PATHS", help="Archive files or folders (default: threads/).")
    _thread_option(p, "Only the thread with this title (its ## heading).", required=False)
    _platform_option(p)
    p.add_argument("--format", "-f", dest="fmt", choices=("text", "json", "html"), default=None,
                   help="Output format (default: text; html with --open or an -o FILE ending in .html).")
    p.add_argument("--output", "-o", type=_file_path, default=None, metavar="FILE",
                   help="Write to this file instead of the terminal (html: default preview.html).")
    p.add_argument("--open", dest="open_browser", action="store_true",
                   help="Write the HTML preview and open it in a browser.")
    p.add_argument("--force", action="store_true",
                   help="Replace FILE even when it is not an earlier preview (never an archive being read).")
    _config_option(p)

    p = _command(sub, "post", "Publish a thread now, or resume one that stopped.",
                 "Every post's ID is written into the archive as it is published, so running the same command "
                 "again resumes\nwithout posting twice. Exit 0 done, 1 unfinished, 2 refused before the first "
                 "request, 3 already running.",
                 ['crossposter post threads/example.md -t "Counting other scripts" --dry-run',
                  'crossposter post threads/example.md -t "Counting other scripts" -p mastodon'])
    p.add_argument("path", type=Path, metavar="PATH", help="The archive file holding the thread.")
    _thread_option(p, "Title of the thread (its ## heading).")
    _platform_option(p, "Only these platforms (default: the config's enabled ones)")
    p.add_argument("--dry-run", action="store_true",
                   help="Go through everything (config, credentials, images) with fake platforms; the archive is "
                        "not touched.")
    _config_option(p)

    p = _command(sub, "schedule", "Schedule a thread (written into the archive's metadata block).",
                 "The daemon publishes it at that time. Refused (unless --force) when the daemon would not: the "
                 "archive is\nnot matched by the config's `archives` globs, or the thread has errors.",
                 ['crossposter schedule threads/example.md -t "Counting other scripts" --at "2030-01-15 09:00"',
                  'crossposter schedule threads/example.md -t "Counting other scripts" --at 2030-01-15T09:00+01:00'])
    p.add_argument("path", type=Path, metavar="PATH", help="The archive file holding the thread.")
    _thread_option(p, "Title of the thread (its ## heading).")
    p.add_argument("--at", required=True, metavar="TIME",
                   help="ISO 8601 with an offset (kept as typed), or 'YYYY-MM-DD HH:MM' in the configured timezone.")
    p.add_argument("--force", action="store_true",
                   help="Schedule even if the daemon would not read the archive or the thread has errors.")
    _config_option(p)

    p = _command(sub, "unschedule", "Remove a thread's schedule (and its `queued` mark).", "",
                 ['crossposter unschedule threads/example.md -t "Counting other scripts"'])
    p.add_argument("path", type=Path, metavar="PATH", help="The archive file holding the thread.")
    _thread_option(p, "Title of the thread (its ## heading).")
    _config_option(p)

    p = _command(sub, "status", "Each thread: schedule, posted n/m per platform, links.",
                 "Reads the archives and the daemon's state file; no network.",
                 ["crossposter status", "crossposter status --format json threads/example.md"])
    p.add_argument("paths", nargs="*", type=Path, metavar="PATHS",
                   help="Archive files or folders (default: the config's `archives`).")
    p.add_argument("--format", "-f", dest="fmt", choices=("text", "json"), default="text",
                   help="Output format (default: text).")
    _config_option(p)

    p = _command(sub, "backup", "Back up your own threads from a platform into a Markdown archive.",
                 "New threads are appended to the archive, later self-replies to their section; a second run "
                 "with nothing new\nchanges nothing. Media go beside the archive (config: backup.media).",
                 ["crossposter backup --from bluesky --dry-run",
                  "crossposter backup --from x --x-archive twitter-2024.zip --into threads/x.md"])
    p.add_argument("--from", dest="source", required=True, choices=[s.name for s in registry.specs() if s.backup],
                   help="The platform to back up.")
    p.add_argument("--into", type=_file_path, default=None, metavar="FILE",
                   help="The archive to write (default: the config's backup.into, threads/{platform}.md).")
    p.add_argument("--x-archive", type=_file_path, default=None, metavar="ZIP",
                   help="With --from x: the archive zip X sends (Settings → Your account → Download an archive).")
    p.add_argument("--since", default=None, metavar="DATE",
                   help="Only posts from this date on (YYYY-MM-DD, or 'YYYY-MM-DD HH:MM', in the config's timezone).")
    p.add_argument("--dry-run", action="store_true",
                   help="Show what would be added; write nothing (no archive, no media, no cursor).")
    _config_option(p)

    p = _command(sub, "check", "Config, credentials (a real login) and archives: everything that would stop a "
                               "scheduled post.", "Exit 1 when something would stop a scheduled or queued thread.",
                 ["crossposter check", "crossposter check -c ~/notes/crossposter.yaml"])
    _config_option(p)
    p = _command(sub, "daemon", "Run the scheduler (the container's entrypoint); with a `mirror:` section, "
                                "also the cross-posting bot.",
                 "Publishes scheduled and queued threads of the config's archives; stops cleanly on SIGTERM.",
                 ["crossposter daemon", "crossposter daemon --backfill 2026-11-01 -c ~/notes/crossposter.yaml"])
    p.add_argument("--backfill", metavar="SINCE", default=None,
                   help="Mirror: also publish source threads started since SINCE (a date or 'YYYY-MM-DD HH:MM' "
                        "in the configured timezone), not only those posted after the mirror's first start.")
    _config_option(p)
    p = _command(sub, "health", "Exit 0 when the daemon's heartbeat is fresh (the container's health check).", "",
                 ["crossposter health", "crossposter health -c ~/notes/crossposter.yaml || systemctl --user "
                  "restart crossposter"])
    _config_option(p)

    p = _command(sub, "init", "Write a commented crossposter.yaml for the platforms you pick (never a secret).",
                 "Asks in a terminal; give the flags otherwise. Refuses to overwrite an existing file. Prints the\n"
                 "environment variables that hold the secrets, to set next.",
                 ["crossposter init", "crossposter init -p bluesky,mastodon --bluesky-handle me.bsky.social "
                  "--mastodon-instance https://mastodon.social"])
    _platform_option(p, "The platforms to enable")
    # each answers one platform's `init_question` (gathered by platform name: `<platform>_answer`)
    p.add_argument("--bluesky-handle", dest="bluesky_answer", metavar="HANDLE",
                   help="Your Bluesky handle, e.g. me.bsky.social.")
    p.add_argument("--mastodon-instance", dest="mastodon_answer", metavar="URL",
                   help="Your Mastodon server, e.g. https://mastodon.social.")
    p.add_argument("--x-username", dest="x_answer", metavar="NAME", help="Your X username, without @.")
    p.add_argument("--timezone", metavar="ZONE", help="IANA time zone for schedules (default: UTC).")
    p.add_argument("--output", "-o", type=_file_path, default=Path("crossposter.yaml"), metavar="FILE",
                   help="Where to write (default: ./crossposter.yaml).")
    return parser


def _names(platforms: list[PlatformName] | None) -> list[PlatformName] | None:
    return list(dict.fromkeys(platforms)) if platforms else None


def run(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the command; its exit code (argparse itself exits 2 on a usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cmd = args.command
    if cmd is None:
        parser.print_help()
        return 0
    if cmd == "preview":
        from crossposter.commands.preview import run as preview

        html_wanted = args.open_browser or (args.output is not None and args.output.suffix.lower() in (".html", ".htm"))
        if args.fmt is None:
            args.fmt = "html" if html_wanted else "text"
        elif args.open_browser and args.fmt != "html":
            parser.error(f"--open shows the HTML preview; drop --format {args.fmt} (or use --format html)")
        return preview(paths=list(args.paths), thread=args.thread, platforms=_names(args.platforms), fmt=args.fmt,
                       output=args.output, open_browser=args.open_browser, config_path=args.config,
                       force=args.force)
    if cmd == "post":
        from crossposter.commands.post import run as post

        return post(path=args.path, thread=args.thread, platforms=_names(args.platforms), dry_run=args.dry_run,
                    config_path=args.config)
    if cmd == "schedule":
        from crossposter.commands.schedule import run_schedule

        return run_schedule(path=args.path, thread=args.thread, at=args.at, config_path=args.config,
                            force=args.force)
    if cmd == "unschedule":
        from crossposter.commands.schedule import run_unschedule

        return run_unschedule(path=args.path, thread=args.thread, config_path=args.config)
    if cmd == "status":
        from crossposter.commands.status import run as status

        return status(paths=list(args.paths), fmt=args.fmt, config_path=args.config)
    if cmd == "backup":
        from crossposter.commands.backup import run as backup

        return backup(platform=args.source, into=args.into, x_archive=args.x_archive, since=args.since,
                      dry_run=args.dry_run, config_path=args.config)
    if cmd == "check":
        from crossposter.commands.check import run as check

        return check(config_path=args.config)
    if cmd == "daemon":
        from crossposter.commands.daemon import run as daemon

        return daemon(config_path=args.config, backfill=args.backfill)
    if cmd == "init":
        from crossposter.commands.init import run as init

        answers = {p: getattr(args, f"{p}_answer", None) for p in registry.names()}
        return init(platforms=_names(args.platforms), output=args.output, answers=answers, timezone=args.timezone)
    from crossposter.commands.health import run as health

    return health(config_path=args.config)


def _excepthook(*exc_info: object) -> None:
    """A traceback nothing caught is printed redacted (imported only then: preview must start fast)."""
    from crossposter.redact import excepthook

    try:
        from crossposter.config import secret_values

        secret_values()  # registers them, for a command that had not read them yet
    except Exception:  # the traceback is printed anyway, redacted of what is known
        pass
    excepthook(*exc_info)  # type: ignore[arg-type]


def main() -> None:
    sys.excepthook = _excepthook
    try:
        code = run()
        sys.stdout.flush()  # here, not at exit, where a closed pipe could only be reported as "ignored"
    except BrokenPipeError:
        # `crossposter status | head`: the reader has what it wanted. No traceback; stdout goes to
        # /dev/null so that the interpreter's own flush at exit finds nothing to complain about.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, what a shell reports for a writer cut off by its reader
    sys.exit(code)


if __name__ == "__main__":
    main()
