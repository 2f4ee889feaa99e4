"""One adapter per platform behind the small protocol in `base`.

Adapters are imported lazily (`load_adapter`) because the SDKs are slow to import
and `preview` must not pay for them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crossposter.config import Config
    from crossposter.platforms.base import Adapter

_MODULES = {"bluesky": "crossposter.platforms.bluesky", "mastodon": "crossposter.platforms.mastodon",
            "x": "crossposter.platforms.x"}


def load_adapter(platform: str, config: Config) -> Adapter:
    """Build the adapter of `platform` from the config (secrets read from the environment)."""
    module = import_module(_MODULES[platform])
    return module.from_config(config)
