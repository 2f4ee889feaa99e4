"""Where crossposter still relies on an SDK's private API: one place, a version guard, a test that fails loudly.

One is left, Mastodon.py's casting of answers (issue 12 asked for every other to go; atproto and tweepy
are used through public names only: `Request(**httpx options)`, `Request.close()`, `Client.session`).

**Mastodon.py: answers as the decoded JSON.** Mastodon.py 2.x turns every answer into typed entities
(Status, Account…, every date parsed) in a name-mangled method, `Mastodon.__try_cast_to_type`; no
constructor option and no public method returns the decoded JSON (read in Mastodon.py's source, 2.3:
`Mastodon.__init__` has no such option, and the `parse=` switch belongs to the private `__api_request`).
The hook replaces that method on one instance. It stays because it is measured to matter, twice over:

* CPU: `benchmarks/publish.py` (13-request Mastodon chain, two runs each way on the shared 2-core
  machine): the chain's own work between requests was 0.02-0.04 s with the hook and 0.07-0.26 s
  without, about 5 ms per answer; a backup page of 40 statuses casts for ~160 ms. (Publishing's wall
  time at 100 ms per request moved within the machine's noise.)
* Meaning: the backup reader is written against the API's JSON as Mastodon documents it (`created_at`
  an ISO string, pages plain lists, IDs strings); typed answers make its times `None` and its paging
  differ, and 11 of its peer tests fail without the hook.

The guard: `MASTODON_PY_TESTED` is the range the hook was read in; `tests/unit/test_sdk_compat.py` fails
when the installed Mastodon.py is outside it (read the new source, then widen it). At run time a
version outside it still gets the hook if the method is there (with one warning); if the method is
gone, `mastodon_plain_json` says so, publishing goes on with typed answers (it reads keys only, which
typed entities offer too), and the backup reader refuses to start rather than misread.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("crossposter.platforms")

#: Mastodon.py versions (major, minor), inclusive, whose casting method the hook was checked against
MASTODON_PY_TESTED = ((2, 0), (2, 3))
#: the name-mangled casting method (`Mastodon.__try_cast_to_type` in mastodon/internals.py)
MASTODON_CAST = "_Mastodon__try_cast_to_type"

_warned: set[str] = set()


def mastodon_py_version() -> tuple[int, int] | None:
    """The installed Mastodon.py's (major, minor), from its distribution metadata (None if unreadable)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = version("Mastodon.py").split(".")[:2]
        return int(major), int(minor)
    except (PackageNotFoundError, ValueError):
        return None


def mastodon_version_tested(found: tuple[int, int] | None) -> bool:
    low, high = MASTODON_PY_TESTED
    return found is not None and low <= found <= high


def mastodon_plain_json(api: Any, found: tuple[int, int] | None = None) -> bool:
    """Make this Mastodon.py instance return answers as the decoded JSON; False when it cannot.

    `found` is the Mastodon.py version (read from the installed package when not given)."""
    found = mastodon_py_version() if found is None else found
    if not mastodon_version_tested(found) and "version" not in _warned:
        _warned.add("version")
        low, high = MASTODON_PY_TESTED
        log.warning("mastodon: Mastodon.py %s is outside the versions crossposter was checked with (%d.%d to %d.%d); "
                    "see crossposter/platforms/sdk_compat.py", ".".join(map(str, found or ("?",))), *low, *high)
    if not callable(getattr(api, MASTODON_CAST, None)):
        if "hook" not in _warned:
            _warned.add("hook")
            log.warning("mastodon: this Mastodon.py has no %s: answers stay typed (slower; backups refused)",
                        MASTODON_CAST)
        return False
    setattr(api, MASTODON_CAST, lambda value, override_type=None: (value, None))
    return True
