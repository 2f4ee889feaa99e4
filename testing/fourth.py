"""A fourth platform in one module: its registry entry, its config section and its (in-memory) adapter.

This is the whole of what a new platform adds (README, "Layout"): `tests/process/test_platform_registry.py`
registers it at test time and takes it through `preview`, a config file with its own section, `check`,
`post` and `status`, with nothing else in crossposter edited. It writes like Mastodon (its dialect),
with a smaller limit the config may lower, one token in `FOURTH_TOKEN` and posts kept in memory (the
shared fakes' rules: it refuses a repeated post, like X).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from crossposter.config import PlatformSettings, platform_secrets, yaml_str
from crossposter.platforms.fakes import FakeAdapter
from crossposter.platforms.registry import PlatformSpec

if TYPE_CHECKING:
    from crossposter.config import Config

NAME = "fourth"
TOKEN = "FOURTH_TOKEN"

SPEC = PlatformSpec(
    name=NAME, display="Fourth", dialect="mastodon", limit=120, config_limit="max_characters",  # type: ignore[arg-type]
    characters_reserved_per_url=23, max_images=4, max_image_bytes=1_000_000, max_alt_text=40,
    max_image_pixels=None, refuses_repeats=True, limit_from_server=False, secret_variables=(TOKEN,),
    adapter=__name__, backup=None, placeholder_account="you@fourth.example",
    id_hint="the post's number (like '17') or its https://fourth.example/@you/17 link",
    settings=f"{__name__}:FourthConfig", id_pattern=r"[0-9]{1,12}",
    link_pattern=r"https://fourth\.example/@[a-z0-9_]{1,30}/(?P<id>[0-9]{1,12})",
    post_link="https://fourth.example/@{handle}/{id}",
)


class FourthConfig(PlatformSettings):
    """`platforms.fourth`: off unless enabled, an account name, a limit that may only be lowered."""

    account_name: str = ""
    max_characters: int = Field(120, ge=1, le=120)

    init_question: ClassVar[str | None] = "Fourth account name"
    secret_help: ClassVar[dict[str, str]] = {TOKEN: "fourth.example > Settings > Tokens"}

    def account(self) -> str:
        return self.account_name

    def missing(self) -> list[str]:
        return [] if self.account_name else ["account_name: not set (your account's name)"]

    def init_section(self, name: str, enabled: bool, answer: str) -> str:
        return (f"  {name}:\n    enabled: {'true' if enabled else 'false'}\n    # Your account's name.\n"
                f"    account_name: {yaml_str(answer)}\n")


#: The platform's "server": every account's posts, kept for the test process (by account name), so that a
#: second `post` sees what the first one published, as a real server would.
SERVERS: dict[str, FakeAdapter] = {}
#: the token each adapter was built with (the test checks the secret came from FOURTH_TOKEN)
TOKENS: list[str] = []


def from_config(config: Config) -> FakeAdapter:
    """The adapter: the shared fakes' rules (the registry entry's), posts kept in `SERVERS`."""
    token = platform_secrets(NAME)[TOKEN].get_secret_value()
    TOKENS.append(token)
    section = config.platforms.section(NAME)
    account = section.account() or "you"
    if account not in SERVERS:
        SERVERS[account] = FakeAdapter(NAME, handle=account, instance="https://fourth.example")
    return SERVERS[account]


def warm_up() -> None:
    """Nothing to load ahead: no SDK."""
