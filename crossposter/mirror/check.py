"""What `crossposter check` verifies of the mirror, beyond the config's own validation.

The config model already refuses a mirror to itself, a target twice or a platform that is not
enabled; the source's real login is part of `check`'s platform logins (the source is enabled).
What is left is what would stop a poll at 3 a.m.: the archive it writes (its folder writable,
the file readable as an archive) and the backup state it keeps its cursor in.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossposter.config import Config


def check_mirror(config: Config, report: Any) -> None:
    """Report (`report.ok/fail/warn`) on the mirror's archive and state; nothing without a `mirror:`."""
    m = config.mirror
    if m is None:
        return
    from crossposter.archive import ArchiveError, read_archive
    from crossposter.mirror.source import into_path
    from crossposter.mirror.state import MirrorState

    into = into_path(config)
    report.ok(f"mirror: {m.from_} -> {', '.join(m.to)} every {m.every:g} s, settle {m.settle:g} s, into {into}")
    folder = into.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK):
        report.fail(f"mirror: {folder} is not writable (the backup creates {into} and its media beside it)")
    if into.exists():
        try:
            read_archive(into)
        except ArchiveError as e:
            report.fail(f"mirror: {e} (the backup stops at a broken archive; fix it)")
        if not os.access(into, os.W_OK):
            report.fail(f"mirror: {into} is not writable")
    if not any(into.resolve() == p for p in config.archive_paths()) and into.exists():
        report.warn(f"mirror: {into} is not among `archives`: `status` does not list its threads")
    st = MirrorState.load(config.state_path)
    if st.start is None:
        report.warn("mirror: never started; its first start mirrors nothing posted before it "
                    "(`crossposter daemon --backfill SINCE` to include older threads)")
    elif st.problems:
        report.warn(f"mirror: last problem ({st.problems[-1].get('at')}): {st.problems[-1].get('message')}")
