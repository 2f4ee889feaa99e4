"""Backup: the account's own threads, from a platform back into the Markdown archive.

Readers (one per platform) turn what the platform serves into `source.SourcePost`s; the rest
(threads, Markdown, media, recording) is shared and platform-neutral.
"""
