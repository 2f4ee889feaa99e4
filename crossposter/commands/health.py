"""`crossposter health`: the container's health check, from the daemon's heartbeat file.

It reads a file instead of talking to the daemon because a health check must be cheap,
must not need a port, and must say "unhealthy" when the daemon's main loop is stuck —
which a stale heartbeat shows and a process-exists check would not. The main loop is not all
of the daemon: each beat also carries the `problems` the loop found with the scheduler's and
the publisher's threads (a thread that ended leaves the loop beating), and any is unhealthy.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path


def run(config_path: Path | None) -> int:
    from crossposter.config import ConfigError, config_for_command, secret_values
    from crossposter.redact import redact
    from crossposter.schedule import HEARTBEAT_FILE

    secret_values()  # registers the secrets, so that nothing printed below can show one
    try:
        config = config_for_command(config_path, required=True)
    except ConfigError as e:
        print(redact(f"unhealthy: {e}"), file=sys.stderr)
        return 1
    path = config.state_path / HEARTBEAT_FILE
    interval = config.daemon.heartbeat_interval
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        beat = datetime.fromisoformat(data["time"])
        age = (datetime.now(UTC) - beat).total_seconds()  # a naive time (an edited file) is a TypeError
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {path} (is the daemon running with this config?)", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(redact(f"unhealthy: cannot read the heartbeat {path}: {e}"), file=sys.stderr)
        return 1
    problems = data.get("problems")
    if age >= 3 * interval:
        print(f"unhealthy: last heartbeat {age:.0f} s ago (limit {3 * interval} s = 3 x heartbeat_interval); "
              "the daemon is stopped or stuck", file=sys.stderr)
        return 1
    if problems:
        for problem in problems if isinstance(problems, list) else [problems]:
            print(redact(f"unhealthy: {problem}"), file=sys.stderr)
        return 1
    print(redact(f"healthy: heartbeat {age:.1f} s ago (pid {data.get('pid')})"))
    return 0
