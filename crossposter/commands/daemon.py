"""`crossposter daemon`: the container's entrypoint. The engine lives in `crossposter.daemon`.

Test hook: with `CROSSPOSTER_FAKE_PLATFORMS=1` in the environment the daemon publishes to
journal fakes (`crossposter.platforms.fakes.JournalFakes`) instead of the real platforms: the choice is
made here, once, and handed to the engine and its publisher child. Only tests and the benchmark
set the variable; the daemon logs loudly when it is on.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger("crossposter.daemon")


def run(config_path: Path | None, backfill: str | None = None) -> int:
    from crossposter.config import ConfigError, config_for_command, missing_settings, secret_values
    from crossposter.logs import setup_logging
    from crossposter.messages import fail

    try:
        config = config_for_command(config_path, required=True)
    except ConfigError as e:
        return fail(e)
    since = None
    if backfill is not None:
        from crossposter.commands.backup import parse_since
        from crossposter.timeparse import TimeError

        if config.mirror is None:
            return fail("--backfill: the config has no `mirror:` section (see config.example.yaml)")
        try:
            since = parse_since(backfill, config.timezone)
        except TimeError as e:
            return fail(f"--backfill: {e}")
    setup_logging(config.daemon.log_format, secret_values())
    from crossposter.platforms.fakes import FAKE_ENV, journal_fakes_from_env

    fakes = journal_fakes_from_env(config)
    if fakes is not None:
        log.warning("%s=1: publishing to FAKE platforms (journal %s)", FAKE_ENV, fakes.journal,
                    extra={"event": "fake_platforms"})
    else:
        problems = missing_settings(config)
        for p in problems:
            log.error("config: %s", p, extra={"event": "config_error"})
        if problems:
            return 1
    try:
        config.state_path.mkdir(parents=True, exist_ok=True)
        probe = config.state_path / f".write-test.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        log.error("state_dir %s is not writable: %s", config.state_path, e.strerror, extra={"event": "config_error"})
        return 1

    from crossposter.daemon.engine import Engine
    from crossposter.daemon.state import STATE_FILE, DaemonState

    # a state file written by an older version may hold unredacted messages, or be readable by others
    DaemonState.load(config.state_path / STATE_FILE).scrub()
    engine = Engine(config, fakes=fakes)
    signals = {"count": 0}

    def on_signal(signum: int, _frame: object) -> None:
        signals["count"] += 1
        name = signal.Signals(signum).name
        if signals["count"] == 1:
            log.info("%s: finishing the current request, then exiting", name, extra={"event": "signal"})
        else:
            log.info("%s again: still finishing the current request", name, extra={"event": "signal"})
        engine.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    engine.start()
    if config.mirror is not None:
        from crossposter.mirror.daemon import attach

        attach(engine, backfill=since)
    try:
        engine.run_forever()
    finally:
        engine.stop()
    log.info("daemon stopped", extra={"event": "stopped_daemon"})
    return 0
