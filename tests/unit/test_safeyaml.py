"""`safeyaml.load` walks a text's events for its depth only when a cheap count says it might be too deep."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from crossposter import safeyaml

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=40)


def _depth(events: list) -> int:
    depth = best = 0
    for e in events:
        if isinstance(e, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            depth += 1
            best = max(best, depth)
        elif isinstance(e, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1
    return best


@settings(max_examples=300)
@given(_values, st.sampled_from([None, True, False]))
def test_the_indicator_count_bounds_the_depth(value: object, flow: bool | None) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
    assert _depth(list(yaml.parse(text))) <= safeyaml._indicators(text)


def test_deep_nesting_is_still_refused_in_every_style() -> None:
    deep = "x"
    for _ in range(60):
        deep = [deep]
    for flow in (True, False):
        text = yaml.safe_dump(deep, default_flow_style=flow)
        try:
            safeyaml.load(text)
        except safeyaml.ShapeError as e:
            assert "nested more than 50 deep" in e.problem
        else:
            raise AssertionError(f"not refused: {text[:80]!r}")
    block = "".join(f"{' ' * i}k{i}:\n" for i in range(60)) + " " * 60 + "v"
    assert safeyaml._indicators(block) > safeyaml.MAX_DEPTH
    try:
        safeyaml.load(block)
    except safeyaml.ShapeError:
        pass
    else:
        raise AssertionError("a 60-deep block mapping was not refused")


def test_a_short_metadata_block_loads_without_the_walk(monkeypatch) -> None:
    walked = []
    monkeypatch.setattr(safeyaml, "_check_shape", lambda text, loader: walked.append(text))
    text = "source: x\nx:\n- {id: '1', url: 'https://x.com/me/status/1', sha: 0f3a}"
    assert safeyaml.load(text) == {"source": "x", "x": [{"id": "1", "url": "https://x.com/me/status/1",
                                                         "sha": "0f3a"}]}
    assert walked == []
