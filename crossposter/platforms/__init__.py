"""One adapter per platform behind the small protocol in `base`, each described in `registry`.

Adapters are imported lazily (`load_adapter`, by the module name the registry gives) because the SDKs
are slow to import and `preview` must not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crossposter.config import Config
    from crossposter.platforms.base import Adapter
    from crossposter.platforms.registry import PlatformName


def load_adapter(platform: PlatformName, config: Config) -> Adapter:
    """Build the adapter of `platform` from the config (secrets read from the environment)."""
    from crossposter.platforms import registry

    return registry.get(platform).adapter_module().from_config(config)
