"""metadata's shortcut for repeated recording: when the archive still holds exactly the bytes this process
wrote, the thread is taken from the verified section parse instead of parsing the whole file again.
These tests check that the shortcut's thread is the one a full parse gives, and that any other bytes
(an editor's save, another program) are parsed afresh."""

from __future__ import annotations

from pathlib import Path

import pytest

import crossposter.metadata as md
from crossposter.archive import decode_archive, parse_archive
from crossposter.metadata import strip_metadata_blocks, update_thread_metadata

FIELDS = ("title", "line", "end_line", "date", "metadata", "body", "body_line", "heading_end_line", "block_line",
          "block_end_line")

ARCHIVES = {
    "lf, middle thread": b"# Top\n\n## First\n\nOne.\n\n## Target\n\n2024-05-01\n\nBody line.\n\n## Last\n\nThree.\n",
    "crlf + bom, first thread": "\ufeff## Target\r\n\r\nBody \u00e9\u00e8 \U0001f600  \r\n\r\n## Other\r\n\r\nx\r\n".encode(),
    "no final newline, last": b"## A\n\na\n\n## Target",
    "setext heading": b"Intro\n\nTarget\n------\n\ntext\n\n## Z\n\nz\n",
    "trailing spaces and blank lines": b"## Target   \n\n\n\nbody   \n\n\n\n## B\nb",
}


def _fresh(path: Path, title: str):  # noqa: ANN202 - a Thread
    data = path.read_bytes()
    return parse_archive(decode_archive(data, path), path).find(title)


def _append(i: int):  # noqa: ANN202
    def update(meta: dict) -> None:
        meta.setdefault("x", []).append({"id": str(1000 + i), "url": f"https://x.com/u/status/{1000 + i}",
                                         "sha": "0123456789ab"})
        if i % 2:
            meta.setdefault("pending", {})["bluesky"] = {"index": i, "rkey": f"3k{i:011d}"}
        else:
            meta.pop("pending", None)
    return update


@pytest.mark.parametrize("name", list(ARCHIVES))
def test_the_remembered_thread_is_the_one_a_full_parse_gives(tmp_path: Path, name: str) -> None:
    path = tmp_path / "a.md"
    original = ARCHIVES[name]
    path.write_bytes(original)
    for i in range(6):
        update_thread_metadata(path, "Target", _append(i))
        remembered = md._written[(str(path.resolve()), "Target")]
        assert remembered.data == path.read_bytes()
        fresh = _fresh(path, "Target")
        assert {f: getattr(remembered.thread, f) for f in FIELDS} == {f: getattr(fresh, f) for f in FIELDS}
    assert strip_metadata_blocks(path.read_bytes()) == original
    assert len(_fresh(path, "Target").metadata["x"]) == 6


def test_bytes_changed_by_someone_else_are_parsed_afresh(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes(b"## A\n\na\n\n## Target\n\nbody\n")
    update_thread_metadata(path, "Target", _append(0))
    # an editor inserts a section above (same size would not matter: the bytes differ) and edits the block
    edited = path.read_bytes().replace(b"## A\n", b"## New\n\nnew text\n\n## A\n")
    edited = edited.replace(b"https://x.com/u/status/1000", b"https://x.com/u/status/1000?edited")
    path.write_bytes(edited)
    update_thread_metadata(path, "Target", _append(1))
    after = path.read_bytes()
    assert strip_metadata_blocks(after) == b"## New\n\nnew text\n\n## A\n\na\n\n## Target\n\nbody\n"
    meta = _fresh(path, "Target").metadata
    assert [e["url"] for e in meta["x"]] == ["https://x.com/u/status/1000?edited", "https://x.com/u/status/1001"]


def test_a_failed_update_forgets_the_remembered_thread(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes(b"## Target\n\nbody\n")
    update_thread_metadata(path, "Target", _append(0))
    key = (str(path.resolve()), "Target")
    assert key in md._written

    def boom(meta: dict) -> None:
        raise RuntimeError("update failed")

    with pytest.raises(RuntimeError):
        update_thread_metadata(path, "Target", boom)
    assert key not in md._written
    update_thread_metadata(path, "Target", _append(1))  # parses the file again and still works
    assert len(_fresh(path, "Target").metadata["x"]) == 2
