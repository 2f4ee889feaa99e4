"""The one redaction of the whole program: every secret value, in every form it can take in text.

Why one mechanism and one registry: a credential reaches text by many roads — an SDK's
exception quoting the header it refused (`'Bearer TOKEN\\n'`), a server echoing the token in
its 401 body (JSON-escaped, HTML-escaped), OAuth's signature base string (percent-encoded,
twice), a Basic header (base64 of `user:secret`), a traceback. Each place that turns such text
into output (log handlers, `check`, `post`, `status`, `health`, the daemon's state file, every
`PlatformError` message) calls `redact`, and every place that holds a secret registers it
(`crossposter.config.read_secret`, each adapter's constructor), so no road depends on someone
remembering to pass the values along.

What is replaced by `***`:

* every registered value, raw or escaped in any of these ways, in any mix and at any depth of
  nesting: Python repr/ascii (`\\'`, `\\\\`, `\\xe9`, `\\u00e9`), JSON (`\\"`, `\\/`, `\\u…`,
  surrogate pairs), percent-encoding (upper or lower case hex, `+` for a space, encoded again
  as `%25…`), HTML character references;
* base64 (standard or URL-safe, padded or not) of the value alone or inside a longer string such
  as `user:secret`: the whole base64 run that carries it goes;
* whatever the value, an `Authorization` header's credentials (`Authorization: Bearer …`,
  `'Authorization': 'OAuth oauth_…="…"'`, `"authorization": "Basic …"`), a bare `Bearer <token>`
  or `OAuth oauth_…` parameter list, and JSON web tokens (a Bluesky session is one).

Secrets shorter than `MIN_SECRET_LENGTH` characters are never registered: hiding "abc" would
hide ordinary words everywhere. `read_secret` refuses them instead (no platform issues such
credentials), so a value this short never reaches a request.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterable
from typing import Any

REDACTED = "***"
MIN_SECRET_LENGTH = 4

_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_HTML_NAMES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}

# --------------------------------------------------------------------------- secret-independent patterns

#: An Authorization header's name and separator, in a raw header, a dict's repr, JSON or a tuple's repr.
_AUTH_NAME = re.compile(r"""(?i)\b(?:proxy-)?authorization(?P<q>\\*['"])?(?P<sep>\s*(?(q)[:=,]|[:=])\s*)""")
#: An authentication scheme's name before its credentials (kept: it says what was there, not what it was).
_SCHEME = re.compile(r"[A-Za-z][\w-]*\s+(?=\S)")
#: (a lower-case word the text must hold, the rule): the word is a cheap test before the regex runs
_TOKEN_RULES = [
    # OAuth 1.0a parameters (X): `OAuth oauth_consumer_key="…", oauth_token="…", …`, maybe escaped quotes
    ("oauth", re.compile(r"""\bOAuth\s+(?:realm|oauth_\w+)\s*=\s*(?:\\*"[^"\\\n]*\\*"|[^\s,'"]*)"""
               r"""(?:\s*,\s*\w+\s*=\s*(?:\\*"[^"\\\n]*\\*"|[^\s,'"]*))*""")),
    # a bearer token standing alone (an SDK's error quoting the header value it refused)
    # (a backslash is part of it — `TOKEN\\n` in a repr — unless it escapes the closing quote)
    ("bearer", re.compile(r"""\b[Bb]earer\s+(?=[^\s'",;)\]}>]{8})(?:[^\s'",;)\]}>\\]|\\++(?!['"]))+""")),
    ("basic", re.compile(r"""\bBasic\s+[A-Za-z0-9+/]{8,}={0,2}""")),
    # a JSON web token (Bluesky's access and refresh tokens)
    ("eyj", re.compile(r"""\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*""")),
]


def _auth_spans(text: str) -> list[tuple[int, int]]:
    """Spans of Authorization header values (the scheme word kept) and of bare tokens."""
    spans: list[tuple[int, int]] = []
    lower = text.lower()
    pos = 0 if "authorization" in lower else len(text)
    while (m := _AUTH_NAME.search(text, pos)) is not None:
        start = pos = m.end()
        if text.startswith(("b'", 'b"'), start):  # a bytes repr: 'Authorization': b'…'
            start += 1
        quote = None
        if text[start:start + 1] in ("'", '"', "\\"):
            k = start
            while k < len(text) and text[k] == "\\":
                k += 1
            if k < len(text) and text[k] in "'\"":
                quote = text[start:k + 1]  # the opening quote with its escaping backslashes
                start = k + 1
        if quote is None:
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
        else:
            end = _closing_quote(text, start, quote)
        scheme = _SCHEME.match(text, start, end)
        if scheme:
            start = scheme.end()
        if end > start:
            spans.append((start, end))
            pos = max(pos, end)  # a header name inside this value is part of it (and scanning stays linear)
    for word, rule in _TOKEN_RULES:
        if word not in lower:
            continue
        for m in rule.finditer(text):
            word = _SCHEME.match(text, m.start(), m.end())
            spans.append((word.end() if word else m.start(), m.end()))
    return spans


def _closing_quote(text: str, start: int, quote: str) -> int:
    """Where a quoted value that opened with `quote` (e.g. `"` or `\\"`) ends: the same quote, equally
    escaped, or the end of the line."""
    depth = len(quote) - 1
    i = start
    while True:
        q = text.find(quote[-1], i)
        newline = text.find("\n", i, q if q >= 0 else len(text))
        if newline >= 0:
            return newline
        if q < 0:
            return len(text)
        j = q
        while j > start and text[j - 1] == "\\":
            j -= 1
        if q - j == depth:
            return j  # the value ends where the closing quote's escaping begins
        i = q + 1


# --------------------------------------------------------------------------- secret-dependent patterns


def _char_pattern(c: str) -> str:
    """Every way one character of a secret can be written in text (escaped, encoded), as a regex.

    Backslash escapes may be doubled any number of times (a repr inside JSON inside a repr...),
    and percent escapes re-encoded (`%252F`); hex digits in either case.
    """
    if c in _PLAIN:
        return c
    code = ord(c)
    escapes = [re.escape(c)]
    if code < 0x100:
        escapes.append(f"x{code:02x}")
    if code < 0x10000:
        escapes.append(f"u{code:04x}")
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        escapes.append(f"u{high:04x}\\\\+u{low:04x}")
    escapes.append(f"U{code:08x}")
    if c == "\\":  # a run of backslashes is the backslash however often escaped (or \x5c…)
        escaped = r"\\+(?i:" + "|".join(escapes[1:]) + ")?"
    else:  # possessive: the run belongs to this escape, and a long run is not retried at every length
        escaped = r"\\++(?i:" + "|".join(escapes) + ")"
    forms = [re.escape(c), escaped,
             "(?i:" + "".join(f"%(?:25)*{b:02x}" for b in c.encode("utf-8")) + ")",
             f"&#(?:0*{code}|(?i:x0*{code:x}));?"]
    if c == " ":
        forms.append(r"\+")
    if c in _HTML_NAMES:
        forms.append(f"&{_HTML_NAMES[c]};")
    return "(?:" + "|".join(forms) + ")"


def _text_pattern(value: str) -> str:
    """The regex of `value` in any spelling. A match never starts inside a run of backslashes: one that
    starts at the run's first backslash covers it, and trying every position of a long run (a hostile
    server's answer) would take quadratic time."""
    return ("" if value[:1] in _PLAIN else r"(?<!\\)") + "".join(_char_pattern(c) for c in value)


def _base64_cores(value: str) -> list[str]:
    """The base64 characters that depend on `value`'s bytes alone, at each of the three alignments.

    Whatever precedes the value (`user:`) only changes the characters that also carry its bits,
    so these cores are found in the base64 of any string containing the value. The value's
    common escaped spellings are covered too: what gets base64-encoded may be a header or a
    JSON document that already holds it percent-encoded or escaped.
    """
    import base64
    import json
    from urllib.parse import quote, quote_plus

    spellings = {value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1],
                 json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]}
    cores: list[str] = []
    for spelling in sorted(spellings):
        raw = spelling.encode("utf-8")
        for k in range(3):
            encoded = base64.b64encode(b"\0" * k + raw).decode("ascii")
            first = -(-8 * k // 6)  # the first character whose 6 bits all come from the value
            last = (8 * (k + len(raw))) // 6  # one past the last such character
            core = encoded[first:last]
            if len(core) >= MIN_SECRET_LENGTH:
                cores.append(core)
                cores.append(core.replace("+", "-").replace("/", "_"))
    return cores


class Redactor:
    """Secret values to hide, and `redact` to hide them (and any Authorization credential) in text.

    Cheap when nothing is there to hide, which is nearly always: the escaped forms of a value keep its
    ASCII letters and digits as they are, so a value's regex only runs on text that holds its longest
    such run; base64 cores are plain substring searches. Patterns are built on first use after `add`.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        #: (a literal every form of the value contains, or "", the value's regex) per value
        self._text: list[tuple[str, re.Pattern[str]]] = []
        self._cores: list[str] = []
        self._b64_run: re.Pattern[str] | None = None
        self._stale = False
        self.add(secrets)

    def add(self, values: Iterable[str]) -> None:
        """Register secret values (too short ones are ignored: see the module docstring)."""
        new = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH} - self._secrets
        if new:
            with self._lock:
                self._secrets |= new
                self._stale = True

    def _compiled(self) -> tuple[list[tuple[str, re.Pattern[str]]], list[str], re.Pattern[str] | None]:
        with self._lock:
            if self._stale:
                self._text = [(max(re.findall("[A-Za-z0-9]+", s), key=len, default=""), re.compile(_text_pattern(s)))
                              for s in sorted(self._secrets)]
                self._cores = sorted({c for s in self._secrets for c in _base64_cores(s)})
                # a core lies inside a run of base64 characters at least as long as the shortest core
                shortest = min((len(c) for c in self._cores), default=0)
                self._b64_run = re.compile(f"[A-Za-z0-9+/_-]{{{shortest},}}") if shortest else None
                self._stale = False
            return self._text, self._cores, self._b64_run

    def __contains__(self, value: str) -> bool:
        return value in self._secrets

    def redact(self, text: str) -> str:
        """`text` with every secret (in every form) and every Authorization credential replaced by ***."""
        if not text:
            return text
        spans = _auth_spans(text)
        patterns, cores, b64_run = self._compiled()
        for literal, pattern in patterns:
            if literal in text:
                spans.extend(m.span() for m in pattern.finditer(text) if m.end() > m.start())
        for run in b64_run.finditer(text) if b64_run is not None else ():
            chunk = run.group()
            if any(core in chunk for core in cores):
                end = run.end()
                while end < len(text) and text[end] == "=":
                    end += 1
                spans.append((run.start(), end))  # the whole base64 string: `user:` and padding go with it
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for start, end in sorted(spans):
            if end <= pos:
                continue
            if start >= pos:
                out.append(text[pos:start])
                out.append(REDACTED)
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def redact_obj(self, obj: Any) -> Any:
        """`obj` with every string in it (keys too, nested dicts and lists) redacted."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return type(obj)(self.redact_obj(v) for v in obj)
        return obj


#: The process's registry: every secret the program read or was handed.
REDACTOR = Redactor()


def register(values: Iterable[str]) -> None:
    """Hide these values from every output of this process from now on."""
    REDACTOR.add(values)


def redact(text: str) -> str:
    return REDACTOR.redact(text)


def redact_obj(obj: Any) -> Any:
    return REDACTOR.redact_obj(obj)


def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    """`sys.excepthook` that prints the traceback redacted: an SDK's exception message can quote a credential."""
    import traceback

    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))


def thread_excepthook(args: Any) -> None:
    """`threading.excepthook`, redacted like `excepthook`."""
    import traceback

    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact(f"Exception in thread {name}:\n{text}"))


def install_excepthooks() -> None:
    """Tracebacks that nothing caught are printed redacted too, from the main thread and from others."""
    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
