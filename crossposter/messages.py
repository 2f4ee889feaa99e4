"""How every command speaks to a person: one prefix for errors, on stderr, redacted; plurals; durations.

One module so that a person learns one shape ("crossposter: error: <file>:<line>: what; what to do")
and a script can grep one prefix, whichever command failed. It imports nothing heavy (`preview`
starts fast): the redaction module is plain `re`.
"""

from __future__ import annotations

import sys

ERROR = "crossposter: error: "
WARNING = "crossposter: warning: "


def _say(prefix: str, message: str) -> None:
    from crossposter.redact import redact

    lines = str(message).splitlines() or [""]
    text = prefix + lines[0] + "".join(f"\n  {line}" for line in lines[1:])
    print(redact(text), file=sys.stderr)


def error(message: object) -> None:
    """Print an error: `crossposter: error: ` and the message on stderr; later lines indented under it."""
    _say(ERROR, str(message))


def warning(message: object) -> None:
    _say(WARNING, str(message))


def fail(message: object, code: int = 1) -> int:
    """`error(message)` and the exit code to return, for `return fail(...)` in a command."""
    error(message)
    return code


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """`1 post`, `2 posts`, `0 posts`; `plural_form` for the irregular ones (`1 entry`, `2 entries`)."""
    return f"{n} {singular if n == 1 else (plural_form or singular + 's')}"


def duration(seconds: float) -> str:
    """A human duration: `45 s`, `5 min`, `2 h 5 min`, `1 day 9 h`. Two units at most: to the
    person, "119398 s" is a puzzle and "1 day 9 h 10 min 0 s" is noise."""
    s = int(round(abs(seconds)))
    if s < 60:
        return f"{s} s"
    units = [(86400, "day"), (3600, "h"), (60, "min"), (1, "s")]
    first = next(i for i, (size, _) in enumerate(units) if s >= size)
    parts = []
    for size, name in units[first:first + 2]:
        n, s = divmod(s, size)
        if n:
            parts.append(plural(n, "day") if name == "day" else f"{n} {name}")
    return " ".join(parts)
