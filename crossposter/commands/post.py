"""`crossposter post`: publish (or resume) one thread now, or show what a run would do (`--dry-run`).

Exit codes: 0 every platform done; 1 some platform did not finish (the summary says why and
how to resume); 2 nothing was posted because of a problem found before the first request
(config, archive, credentials, images); 3 another run is posting this thread right now.

A dry run goes through the same pre-flight as a real run. What only a real run needs (a config
file, credentials, a writable archive and state_dir) does not stop it, since it posts to fakes
and records into a copy: it shows the posts and the archive diff, then lists those problems as
what a real run would refuse, and exits 2 like the real run would.
"""

from __future__ import annotations

import difflib
import logging
import signal
import sys
import threading
from pathlib import Path

from crossposter.platforms.registry import PlatformName

EXIT_OK, EXIT_INCOMPLETE, EXIT_PREFLIGHT, EXIT_LOCKED = 0, 1, 2, 3


def _console():  # noqa: ANN202 - rich is imported lazily
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _setup_logging(progress: bool) -> None:
    """Plain timestamped lines on stderr when no progress bar is drawn (pipes, CI, cron), redacted."""
    from crossposter.logs import setup_command_logging

    setup_command_logging(logging.WARNING if progress else logging.INFO)


def run(path: Path, thread: str, platforms: list[PlatformName] | None, dry_run: bool, config_path: Path | None) -> int:
    from crossposter.config import ConfigError, default_config, find_config_file, load_config, secret_values
    from crossposter.messages import fail, plural, warning
    from crossposter.publish import PreflightError, ThreadLockedError, publish_thread

    secret_values()  # registers every readable secret: errors below may quote one (server answers)
    console = _console()
    err = _console()
    err.stderr = True
    archive = Path(path)
    if not archive.is_file():
        return fail(f"{archive}: " + ("not a regular file; give the Markdown file itself" if archive.exists()
                                      else "no such archive file"), EXIT_PREFLIGHT)
    cfg_file = find_config_file(config_path)
    refusals: list[str] = []
    try:
        if cfg_file is not None:
            config = load_config(cfg_file)
        elif dry_run:
            config = default_config()
            warning("no config file found: the dry run uses the defaults (all three platforms)")
            refusals.append("no config file: `crossposter post` needs one: pass --config FILE, set CROSSPOSTER_CONFIG, "
                            "or create ./crossposter.yaml (see config.example.yaml)")
        else:
            return fail("no config file: `crossposter post` needs one: pass --config FILE, set CROSSPOSTER_CONFIG, "
                        "or create ./crossposter.yaml (`crossposter init` writes one)", EXIT_PREFLIGHT)
    except ConfigError as e:
        return fail("\n".join(["the config has problems:", *str(e).splitlines()]), EXIT_PREFLIGHT)

    progress = sys.stdout.isatty() and not dry_run
    _setup_logging(progress or dry_run)  # a dry run prints what it would send below: no "posted" log lines
    adapters = None
    if dry_run:
        from crossposter.platforms.fakes import fake_adapters

        adapters = fake_adapters(platforms or config.enabled_platforms(), config=config, strict=False)
    before = archive.read_bytes() if dry_run else b""
    stop = threading.Event()

    def stop_soon(signum: int, _frame: object) -> None:
        """First Ctrl-C/SIGTERM: finish the requests in flight, record them, send nothing more."""
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if dry_run:
            err.print("Stopping the dry run.")
        else:
            err.print("Stopping: no new requests; what is already sent gets recorded. Run again to resume.")

    in_main = threading.current_thread() is threading.main_thread()  # signals can only be caught there
    previous = {sig: signal.signal(sig, stop_soon) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        result = publish_thread(config, archive, thread, platforms, adapters=adapters,  # type: ignore[arg-type]
                                progress=progress, dry_run=dry_run, stop_event=stop)
    except PreflightError as e:
        return fail("\n".join(["cannot post this thread; nothing was posted anywhere:", *e.problems]), EXIT_PREFLIGHT)
    except ThreadLockedError as e:
        return fail(str(e), EXIT_LOCKED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    if dry_run and adapters is not None:
        console.print(f"[bold]Dry run[/] of {thread!r}: nothing was sent, the archive was not touched.")
        if refusals or result.refusals:
            console.print("[bold red]A real run would refuse this thread now[/] (the problems are listed at the end); "
                          "below is what it would do once they are fixed.")
        console.print()
        for name, fake in adapters.items():
            posts = fake.thread()
            console.print(f"[bold]{name}[/]: {plural(len(posts), 'post')} would be sent")
            for n, p in enumerate(posts, 1):
                reply = f"reply to {p.parent}" if p.parent else "thread root"
                console.print(f"--- {name} {n}/{len(posts)} ({reply})", markup=False)
                console.print(p.text, markup=False)
                for mid in p.media:
                    m = fake.media[mid]
                    console.print(f"    [image {m.width}x{m.height}, alt: {m.alt!r}]", markup=False)
            console.print()
        after = result.archive_after or before
        diff = difflib.unified_diff(before.decode("utf-8", "replace").splitlines(keepends=True),
                                    after.decode("utf-8", "replace").splitlines(keepends=True),
                                    fromfile=f"{archive} (now)", tofile=f"{archive} (after posting)")
        text = "".join(diff)
        console.print("[bold]Archive changes that posting would write:[/]")
        console.print(text if text else "(none)", markup=False)

    _summary(console, result, dry_run)
    refusals += result.refusals
    if refusals:
        return fail("\n".join(["a real run would refuse this thread before its first request; fix these first:",
                                *refusals]), EXIT_PREFLIGHT)
    return EXIT_OK if result.ok else EXIT_INCOMPLETE


def _summary(console, result, dry_run: bool = False) -> None:  # noqa: ANN001 - rich Console / PublishResult
    """The table of outcomes. Messages quote server answers: redacted before rich folds them into cells
    (a secret folded over two lines could no longer be recognised)."""
    from rich.markup import escape
    from rich.table import Table

    from crossposter.outcome import RETRYABLE, OutcomeState
    from crossposter.redact import redact

    title = f"{result.title} — {result.archive.name}" + (" (dry run: what a real run would do)" if dry_run else "")
    table = Table(title=title, title_justify="left")
    table.add_column("platform")
    table.add_column("posted", justify="right")
    table.add_column("state")
    table.add_column("links / what to do", overflow="fold")
    for name, o in result.outcomes.items():
        links = o.links if len(o.links) <= 3 else [o.links[0], f"… {len(o.links) - 2} more …", o.links[-1]]
        detail = "\n".join(links) if o.state == "done" else "\n".join([o.message, *links])
        if o.retry_at:
            detail += f"\nretry after {o.retry_at:%Y-%m-%d %H:%M:%S} UTC"
        style = "green" if o.state == OutcomeState.DONE else "yellow" if o.state in RETRYABLE else "red"
        table.add_row(name, f"{o.posted}/{o.total}", f"[{style}]{o.state}[/]", escape(redact(detail)))
    console.print(table)
    if result.ok:
        return
    if dry_run:  # nothing was published, so there is nothing to resume
        console.print("A real run would not finish every platform; the table says why.")
    else:
        console.print("Not every platform finished; fix what the table says and run the same command again to "
                      "resume (posts already published are skipped).")
