"""crossposter: publish Markdown thread archives to Bluesky, Mastodon and X."""

__version__ = "0.1.0"
