"""Logging for the daemon and `check`: stdout, plain or JSON lines, secrets redacted.

Containers collect stdout, so that is the only destination. The redacting filter sits on
the handler (not on a logger) so that every record, from our code or from an SDK's logger,
passes through it: a token that ends up in an exception message or an HTTP debug line is
replaced by `***` before it is written, in whatever form it took (see `crossposter.redact`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from crossposter.redact import REDACTED, install_excepthooks, redact, redact_obj, register

__all__ = ["REDACTED", "JsonFormatter", "RedactFilter", "setup_command_logging", "setup_logging"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactFilter(logging.Filter):
    """Passes every record through `crossposter.redact`: message, traceback, stack and `extra=` fields.

    The values come from the process's registry (`crossposter.redact.register`); `secrets`
    given here are registered too. Also used on single loggers (the X adapter puts it on the
    OAuth loggers, whose records may reach handlers that are not ours).
    """

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        register(secrets or [])

    @staticmethod
    def redact(text: str) -> str:
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_crossposter_redacted", False):
            return True
        try:
            msg = record.getMessage()
        except Exception:  # a record that cannot format fails in the handler anyway, with its own words
            return True
        if record.exc_info:
            # format the traceback now so that it can be redacted too
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.msg = redact(msg)
        record.args = None
        for k, v in list(vars(record).items()):
            if k not in _STANDARD and not k.startswith("_"):
                setattr(record, k, redact_obj(v))
        record._crossposter_redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and every `extra=` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:  # only when no RedactFilter ran (it formats and redacts the traceback itself)
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(fmt: str = "plain", secrets: list[str] | None = None, level: int = logging.INFO,
                  stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to stdout in `fmt` ("plain" or "json"), redacting `secrets`."""
    handler = logging.StreamHandler(stream or sys.stdout)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets or []))
    install_excepthooks()
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler logs every job execution at INFO; ours already say what happened.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler


class _OursFrom(logging.Filter):
    """Our records from `level` on, everybody else's (SDKs, HTTP stacks) from WARNING on."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "crossposter" or record.name.startswith("crossposter.")
        return record.levelno >= (self.level if ours else logging.WARNING)


def setup_command_logging(level: int = logging.WARNING, stream: TextIO | None = None) -> logging.Handler | None:
    """Log lines of a one-shot command (`post`, `check`) on stderr as `HH:MM:SS message`, redacted.

    Without a handler, Python prints an SDK's warnings through its last-resort handler, which no
    filter sees. Does nothing when logging is already set up (a test's capture, an embedding program).
    """
    root = logging.getLogger()
    if root.handlers or logging.getLogger("crossposter").handlers:
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactFilter())
    handler.addFilter(_OursFrom(level))
    root.addHandler(handler)
    root.setLevel(min(level, logging.WARNING))
    install_excepthooks()
    return handler
