"""Every fact about a platform that is not code, written once: the one place a new platform is added.

Names, display names, default limits, image and alt-text limits, which text rules apply, which module holds
the adapter and which the backup reader: everything else (the CLI's choices, the planner's defaults, the
previews' column titles, the fakes' limits, the adapters' fallbacks when a server says nothing) is derived
from here. A new platform is one `PlatformSpec` below plus its adapter module (README, "Layout").

Importing this must stay as cheap as importing `dataclasses`: `crossposter preview` reads it on its
fast path. Adapter and backup modules are therefore named as strings and imported only when used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType
from typing import Literal, get_args

#: A platform's key, for type hints. Add a new platform's name here too (a test checks this list
#: against the specs below).
PlatformName = Literal["bluesky", "mastodon", "x"]
#: The text rules render/split/counting know, named after the platform that defined them. A platform
#: picks one (`PlatformSpec.dialect`): its counting rule, how links are shown and what a mention looks like.
Dialect = Literal["bluesky", "mastodon", "x"]


@dataclass(frozen=True)
class PlatformSpec:
    """One platform, as the rest of crossposter sees it before any adapter is loaded."""

    #: the key everywhere: the CLI's `-p`, the config's `platforms:` section, the archive's block, the JSON
    name: PlatformName
    #: how a person reads it (preview columns, backup titles, messages)
    display: str
    #: the text rules (see `Dialect`): counting, link style (Bluesky: link facets; the others: written
    #: out), mention syntax
    dialect: Dialect
    #: the post limit when neither the config nor the server says otherwise (by the dialect's counting)
    limit: int
    #: the config field under `platforms.<name>` that replaces `limit`, when the user may change it
    config_limit: str | None
    #: what one URL counts, when the platform counts every URL the same (None: as written)
    characters_reserved_per_url: int | None
    max_images: int
    max_image_bytes: int
    #: longest alt text the platform keeps (the planner's check; an adapter may learn a larger one)
    max_alt_text: int
    #: pixels per image (width × height), when the platform has such a cap
    max_image_pixels: int | None
    #: refuses a post repeating a recent one of the account ("duplicate content")
    refuses_repeats: bool
    #: the server says the account's post limit (a Mastodon instance's own): the plan is redone with it
    limit_from_server: bool
    #: environment variables holding the credentials (names only: never a value here); each may also be
    #: given as `<NAME>_FILE`, a file holding it (see config.platform_secrets)
    secret_variables: tuple[str, ...]
    #: module holding the adapter: `from_config(config) -> Adapter` and `warm_up() -> None` (the one-time
    #: costs of a fresh process, paid offline; see publish.warm_up); imported lazily: SDKs are slow
    adapter: str
    #: module holding the backup reader, if the platform can be backed up from
    backup: str | None
    #: the account shown in the HTML preview when no config names one
    placeholder_account: str
    #: what an ID recorded in the archive looks like (for the metadata's error messages)
    id_hint: str
    #: the model of the config's `platforms.<name>` section, as "module:Class" (a pydantic model with
    #: `enabled`, `account()` and `init_section()`; see config.PlatformSettings); imported when a config is read
    settings: str = "crossposter.config:PlatformSettings"
    #: a recorded post ID, whole (thread_meta checks every ID the archive holds against it)
    id_pattern: str = r"[0-9A-Za-z]{1,64}"
    #: a post's link a person may paste instead of its ID (named groups feed `id_from_link`); None: IDs only
    link_pattern: str | None = None
    #: the ID a pasted link stands for, filled from `link_pattern`'s named groups
    id_from_link: str = "{id}"
    #: an unquoted all-digit ID (YAML reads it as a number) is taken as the ID
    numeric_ids: bool = True
    #: a reply names its parent by ID and content hash (Bluesky's strong refs: entries may carry a `cid`)
    strong_refs: bool = False
    #: the record key and time are fixed before a post's first attempt and kept in the block's `pending:`
    #: (a retried write then rewrites the same record: Bluesky's idempotency)
    record_key_first: bool = False
    #: the server returns the first post for a repeated Idempotency-Key (Mastodon's idempotency)
    idempotency_key: bool = False
    #: a post's link, from the account (`handle`), the server (`instance`), the `id` and the record key
    post_link: str = "{instance}/{handle}/{id}"
    #: the account can edit a published post, keeping its ID (Mastodon's status edit: the adapter's `update`)
    edits_posts: bool = False

    @property
    def link_style(self) -> Literal["facets", "written"]:
        """Bluesky shows a link as a facet over shortened text; the others write the URL out."""
        return "facets" if self.dialect == "bluesky" else "written"

    @property
    def counting_rule(self) -> str:
        """The dialect's counting rule in one line (counting.PLATFORM_RULES; counting imports light)."""
        from crossposter.counting import PLATFORM_RULES

        return PLATFORM_RULES[self.dialect]

    def adapter_module(self) -> ModuleType:
        """The adapter's module, imported now (the SDK's cost is paid by whoever asks)."""
        return import_module(self.adapter)


# atproto syntax (atproto.com/specs): DID, handle, TID; a post's record key is a TID (lexicon key type "tid").
ATPROTO_DID = r"did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]"
ATPROTO_HANDLE = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ATPROTO_TID = r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}"

_SPECS: dict[str, PlatformSpec] = {}
#: the built-in platforms (registered at the end of this module)
BUILTIN: tuple[PlatformName, ...] = ("bluesky", "mastodon", "x")


def register(spec: PlatformSpec) -> PlatformSpec:
    """Add a platform (the built-in ones below; a test may add one). A name is registered once.

    Checked here because each fact is used far from here: the name is a YAML key, a CLI word (`-p a,b`)
    and a file-name part; render/split/counting know only their dialects.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", spec.name) or spec.name in ("pending", "source", "schedule", "queued",
                                                                        "skip"):
        raise ValueError(f"platform name {spec.name!r}: lowercase letters, digits and _, and not a metadata key")
    if spec.dialect not in get_args(Dialect):
        raise ValueError(f"platform {spec.name!r}: unknown dialect {spec.dialect!r} "
                         f"(one of {', '.join(get_args(Dialect))}; a new one needs render/split/counting)")
    if min(spec.limit, spec.max_images, spec.max_image_bytes, spec.max_alt_text) < 1:
        raise ValueError(f"platform {spec.name!r}: limits must be positive")
    # read with every recorded ID: a bad one is said now (not for the built-in ones, a test compiles theirs:
    # compiling them here would cost `preview`'s start ~40 ms)
    for field in ("id_pattern", "link_pattern") if spec.name not in BUILTIN else ():
        try:
            pattern = re.compile(getattr(spec, field) or "")
        except re.error as e:
            raise ValueError(f"platform {spec.name!r}: {field} is not a regular expression ({e})") from None
        if field == "link_pattern" and spec.link_pattern:
            wanted = set(re.findall(r"{(\w+)}", spec.id_from_link)) - set(pattern.groupindex)
            if wanted:
                raise ValueError(f"platform {spec.name!r}: id_from_link needs {', '.join(sorted(wanted))}, "
                                 "which link_pattern has no named group for")
    if spec.settings.count(":") != 1:
        raise ValueError(f"platform {spec.name!r}: settings is 'module:Class', not {spec.settings!r}")
    if spec.name in _SPECS and _SPECS[spec.name] != spec:
        raise ValueError(f"platform {spec.name!r} is already registered differently")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a platform a test registered (the built-in ones stay)."""
    if name in BUILTIN:
        raise ValueError(f"{name!r} is a built-in platform")
    _SPECS.pop(name, None)


def get(name: str) -> PlatformSpec:
    """The spec of `name`; KeyError for a platform nobody registered."""
    return _SPECS[name]


def specs() -> tuple[PlatformSpec, ...]:
    """Every registered platform, in registration order (the order of every list and column)."""
    return tuple(_SPECS.values())


def names() -> tuple[PlatformName, ...]:
    """Every registered platform's name, in order; read at call time, so a platform added later counts."""
    return tuple(_SPECS)  # type: ignore[arg-type]


def display(name: str) -> str:
    """The display name of `name`, or `name` itself for one nobody registered (never fails in a message)."""
    spec = _SPECS.get(name)
    return spec.display if spec else name


def dialect_of(name: str) -> str:
    """The dialect `name` is written in (a name nobody registered is taken as its own dialect)."""
    spec = _SPECS.get(name)
    return spec.dialect if spec else name


def default_limits() -> dict[str, int]:
    return {s.name: s.limit for s in _SPECS.values()}


register(PlatformSpec(
    name="bluesky", display="Bluesky", dialect="bluesky", limit=300, config_limit="max_graphemes",
    characters_reserved_per_url=None, max_images=4, max_image_bytes=1_000_000, max_alt_text=2000,
    max_image_pixels=None, refuses_repeats=False, limit_from_server=False,
    secret_variables=("CROSSPOSTER_BLUESKY_PASSWORD",),
    adapter="crossposter.platforms.bluesky", backup="crossposter.backup.bluesky",
    placeholder_account="you.bsky.social",
    id_hint="an at:// URI like at://did:plc:…/app.bsky.feed.post/3l… (or the post's https://bsky.app link)",
    settings="crossposter.config:BlueskyConfig",
    id_pattern=rf"at://(?P<repo>{ATPROTO_DID}|{ATPROTO_HANDLE})/app\.bsky\.feed\.post/(?P<rkey>{ATPROTO_TID})",
    link_pattern=rf"https://bsky\.app/profile/(?P<repo>{ATPROTO_DID}|{ATPROTO_HANDLE})/post/(?P<rkey>{ATPROTO_TID})",
    id_from_link="at://{repo}/app.bsky.feed.post/{rkey}", numeric_ids=False, strong_refs=True,
    record_key_first=True, post_link="https://bsky.app/profile/{handle}/post/{rkey}",
))
register(PlatformSpec(
    # max_image_bytes: 10 MiB, used when the instance does not say
    name="mastodon", display="Mastodon", dialect="mastodon", limit=500, config_limit="max_characters",
    characters_reserved_per_url=23, max_images=4, max_image_bytes=10_485_760, max_alt_text=1500,
    max_image_pixels=None, refuses_repeats=False, limit_from_server=True,
    secret_variables=("CROSSPOSTER_MASTODON_ACCESS_TOKEN",),
    adapter="crossposter.platforms.mastodon", backup="crossposter.backup.mastodon",
    placeholder_account="you@mastodon.social",
    id_hint="the status ID (letters and digits, like '113520001') or the status's link",
    settings="crossposter.config:MastodonConfig",
    # digits on Mastodon itself; GoToSocial and Akkoma use ULIDs and flake IDs
    id_pattern=r"[0-9A-Za-z]{1,64}",
    link_pattern=r"https?://[A-Za-z0-9.:\[\]-]+/(?:@[^/\s]+|users/[^/\s]+/statuses)/(?P<id>[0-9A-Za-z]{1,64})",
    idempotency_key=True, post_link="{instance}/@{handle}/{id}", edits_posts=True,
))
register(PlatformSpec(
    name="x", display="X", dialect="x", limit=280, config_limit=None,
    characters_reserved_per_url=23, max_images=4, max_image_bytes=5_000_000, max_alt_text=1000,
    max_image_pixels=None, refuses_repeats=True, limit_from_server=False,
    secret_variables=("CROSSPOSTER_X_CONSUMER_KEY", "CROSSPOSTER_X_CONSUMER_SECRET",
                      "CROSSPOSTER_X_ACCESS_TOKEN", "CROSSPOSTER_X_ACCESS_TOKEN_SECRET"),
    adapter="crossposter.platforms.x", backup="crossposter.backup.x_api",
    placeholder_account="you",
    id_hint="the post's numeric ID (like '1862000000000000001') or its https://x.com/…/status/… link",
    settings="crossposter.config:XConfig",
    id_pattern=r"[0-9]{1,19}",
    link_pattern=r"https://(?:www\.)?(?:x|twitter)\.com/[A-Za-z0-9_]{1,50}/status/(?P<id>[0-9]{1,19})",
    post_link="https://x.com/{handle}/status/{id}",
))
