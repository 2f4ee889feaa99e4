"""Where `preview --output` may write, and writing there atomically.

`preview a.md -o a.md` once replaced the archive (the person's only copy of their writing) with its own
preview. An output path is now refused when it is one of the inputs (the archives read, the config), by
any name (a symlink, a hard link, `./a.md`); and an existing file is only replaced when it is empty or an
earlier crossposter preview (its HTML page, JSON document or text report), unless `--force` says so.
The file is written beside the target and renamed over it, so an interrupted preview leaves the old file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: How each format of `crossposter preview` begins (JSON, HTML) or ends (the text report's summary line).
_JSON_START = '{\n  "threads": ['
_HTML_START = "<!DOCTYPE html>"
_HTML_MARK = '<a class="skip-link" href="#main">Skip to the preview</a>'
_TEXT_END = re.compile(r"\d+ threads?, \d+ posts?, \d+ skipped, \d+ errors?, \d+ warnings?\s*\Z")


def refusal(target: Path, inputs: list[Path], force: bool) -> str | None:
    """Why the preview must not be written to `target`, or None."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"cannot write the preview to {target}: {e.strerror or e}"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return None  # /dev/null, /dev/stdout, a pipe: written to as they are, nothing in them to lose
    if not stat.S_ISREG(st.st_mode):
        return f"{target} is not a regular file; give a file path for the preview (or leave out --output)"
    for path in inputs:
        try:
            other = os.stat(path)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return (f"refusing to write the preview to {target}: it is {path}, an input of this preview, and "
                    "would be replaced by it; give another --output file")
    if force or st.st_size == 0 or is_preview(target):
        return None
    return (f"{target} exists and is not a crossposter preview; refusing to replace it (give another --output "
            "file, or add --force to replace it)")


def is_preview(path: Path) -> bool:
    """Whether `path` holds what `crossposter preview` writes (JSON, HTML or text)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            f.seek(max(0, os.fstat(f.fileno()).st_size - 512))
            tail = f.read(512)
    except OSError:
        return False
    text = head.decode("utf-8", "replace")
    if text.startswith(_JSON_START) or text.startswith(_HTML_START) and _HTML_MARK in text:
        return True
    return _TEXT_END.search(tail.decode("utf-8", "replace")) is not None


@contextmanager
def replace_atomically(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` to write; renamed over `target` when the block ends without error
    (`atomic.replacing`: fsynced, then renamed, then the folder fsynced).

    A device or a pipe (`/dev/null`, `/dev/stdout`) is written to directly. A symlink is followed (the file
    it names is replaced, the link stays); the new file keeps the mode of the one it replaces (else the
    usual mode for a new file).
    """
    from crossposter.atomic import replacing

    try:
        st = os.stat(target)
        if not stat.S_ISREG(st.st_mode):  # a device or a pipe (see `refusal`): write to it as it is
            yield target
            return
        mode = stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with replacing(Path(os.path.realpath(target)), mode) as tmp:
        yield tmp
