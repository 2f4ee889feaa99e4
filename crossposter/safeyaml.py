"""Load YAML a person wrote (a metadata block, the config) without YAML's aliases.

`yaml.safe_load` is safe against code execution, not against size: an anchor and a handful of
aliases (`a: &a [x, x]`, `b: &b [*a, *a]`, … nine levels deep) read as a few shared lists,
cheaply, but everything that walks the value sees 2^n items. For a metadata block the walk is
the next write (the dumper writes every alias out: minutes and gigabytes, after the first post
went out); for the config it is pydantic's validation. crossposter never writes an alias, and a
person has no reason to, so a document that holds one is refused with its line instead of capped.

libyaml (`CSafeLoader`) is used when PyYAML was built with it, as everywhere else.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_DEPTH", "ShapeError", "load"]

#: Deepest nesting of lists and mappings taken (crossposter's own documents are 3 or 4 deep).
MAX_DEPTH = 50


class ShapeError(ValueError):
    """An alias or too deep a nesting; `line` is 0-based within the document, `problem` says which."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(problem)


def _loader() -> type:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """`yaml.safe_load(text)`, refusing aliases and deep nesting (ShapeError); else `yaml.YAMLError`."""
    import yaml

    loader = _loader()
    if "*" in text or _indicators(text) > MAX_DEPTH:
        _check_shape(text, loader)
    return yaml.load(text, Loader=loader)


def _indicators(text: str) -> int:
    """An upper bound of the nesting depth of `text`, read without parsing it.

    Every list or mapping YAML opens needs a character of its own among `[`, `{` (flow), `-` (a block
    list entry), `:` (a key's value, which opens a mapping), `?` (an explicit key); a text with no more
    of them than MAX_DEPTH cannot nest deeper, so its events need not be walked (the walk parses the
    text a second time: it was a third of loading a metadata block).
    """
    return text.count("[") + text.count("{") + text.count("-") + text.count(":") + text.count("?")


def _check_shape(text: str, loader: type) -> None:
    import yaml

    opening = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    closing = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        kind = type(event)
        if kind in opening:
            depth += 1
            if depth > MAX_DEPTH:
                raise ShapeError(event.start_mark.line, f"lists and mappings nested more than {MAX_DEPTH} deep")
        elif kind in closing:
            depth -= 1
        elif kind is yaml.AliasEvent:
            raise ShapeError(event.start_mark.line, f"YAML alias `*{event.anchor}` (anchors and aliases are not "
                                                    "supported here: write the value out)")
