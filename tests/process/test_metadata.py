"""Writing metadata blocks: exact bytes, atomicity, locking, permissions.

Losing a byte of the user's archive is the worst bug this project can have, so the
expectations here are literal byte strings or properties checked against the
original bytes, never output of the code under test.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crossposter.archive import ArchiveError, read_archive
from crossposter.metadata import strip_metadata_blocks, thread_metadata, update_thread_metadata


def set_skip(meta: dict) -> None:
    meta["skip"] = True


def write(tmp_path: Path, data: bytes, name: str = "a.md") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# --------------------------------------------------------------------------- literal bytes


@pytest.mark.parametrize("before, after", [
    (b"## A\nbody\n", b"## A\n<!-- crossposter\nskip: true\n-->\nbody\n"),
    (b"## A\r\nbody\r\n", b"## A\r\n<!-- crossposter\r\nskip: true\r\n-->\r\nbody\r\n"),
    # the heading's own line ending wins in a mixed file
    (b"# T\n\n## A\r\nbody\n", b"# T\n\n## A\r\n<!-- crossposter\r\nskip: true\r\n-->\r\nbody\n"),
    (b"intro\n## A", b"intro\n## A\n<!-- crossposter\nskip: true\n-->"),
    (b"intro\r\n## A", b"intro\r\n## A\r\n<!-- crossposter\r\nskip: true\r\n-->"),
    (b"\xef\xbb\xbf## A  \n\n2024-01-01 10:00\n\nbody  \n",
     b"\xef\xbb\xbf## A  \n<!-- crossposter\nskip: true\n-->\n\n2024-01-01 10:00\n\nbody  \n"),
    (b"A\n---\ntext", b"A\n---\n<!-- crossposter\nskip: true\n-->\ntext"),
])
def test_insert_exact_bytes(tmp_path: Path, before: bytes, after: bytes) -> None:
    p = write(tmp_path, before)
    title = "A"
    assert update_thread_metadata(p, title, set_skip) == {"skip": True}
    assert p.read_bytes() == after
    assert strip_metadata_blocks(after) == before
    # removing every key removes the block and gives back the original bytes
    update_thread_metadata(p, title, lambda m: m.clear())
    assert p.read_bytes() == before


def test_block_layout_is_one_line_per_post(tmp_path: Path) -> None:
    p = write(tmp_path, b"## Mixtral\n\n2024-02-14 23:23\n\nText.\n")

    def record(meta: dict) -> None:
        meta["schedule"] = "2026-12-01T09:00:00+01:00"
        meta.setdefault("mastodon", []).append({"id": "113520001", "url": "https://m.example/@me/113520001",
                                                "sha": "0f3a9b2c4d5e"})
        meta["pending"] = {"bluesky": {"index": 3, "rkey": "3lbq2xk7d2s2a"}}

    update_thread_metadata(p, "Mixtral", record)
    assert p.read_text() == (
        "## Mixtral\n"
        "<!-- crossposter\n"
        "schedule: '2026-12-01T09:00:00+01:00'\n"
        "mastodon:\n"
        "- {id: '113520001', url: 'https://m.example/@me/113520001', sha: 0f3a9b2c4d5e}\n"
        "pending:\n"
        "  bluesky: {index: 3, rkey: 3lbq2xk7d2s2a}\n"
        "-->\n"
        "\n2024-02-14 23:23\n\nText.\n")
    t = read_archive(p).find("Mixtral")
    assert t.date == "2024-02-14 23:23" and t.body == "Text.\n"


def test_existing_handwritten_block_is_updated_in_place(tmp_path: Path) -> None:
    original = b"## A\r\n\r\n<!-- crossposter\r\n# my note\r\nschedule: tomorrow\r\n-->  \r\n\r\nbody\r\n"
    p = write(tmp_path, original)
    assert thread_metadata(p, "A") == {"schedule": "tomorrow"}
    update_thread_metadata(p, "A", lambda m: m.update(x=[{"id": "1"}]))
    new = p.read_bytes()
    assert new == (b"## A\r\n\r\n<!-- crossposter\r\nschedule: tomorrow\r\nx:\r\n- {id: '1'}\r\n-->\r\n"
                   b"\r\nbody\r\n")
    assert strip_metadata_blocks(new) == strip_metadata_blocks(original) == b"## A\r\n\r\n\r\nbody\r\n"


def test_block_at_end_of_file_without_newline_is_updated_and_removed(tmp_path: Path) -> None:
    p = write(tmp_path, b"## A\n<!-- crossposter\nskip: true\n-->")
    update_thread_metadata(p, "A", lambda m: m.update(n=1))
    assert p.read_bytes() == b"## A\n<!-- crossposter\nskip: true\nn: 1\n-->"
    update_thread_metadata(p, "A", lambda m: m.clear())
    assert p.read_bytes() == b"## A"


def test_refusals_leave_the_file_untouched(tmp_path: Path) -> None:
    data = b"## A\nx\n## Dup\ny\n## Dup\nz\n"
    p = write(tmp_path, data)
    before = os.stat(p)
    for title in ("Nope", "Dup"):
        with pytest.raises(ArchiveError):
            update_thread_metadata(p, title, set_skip)
    with pytest.raises(ArchiveError, match="-->"):
        update_thread_metadata(p, "A", lambda m: m.update(note="a --> b"))
    with pytest.raises(ArchiveError, match="round trip"):
        update_thread_metadata(p, "A", lambda m: m.update(pair=(1, 2)))

    def boom(meta: dict) -> None:
        meta["half"] = True
        raise RuntimeError("update failed")

    with pytest.raises(RuntimeError):
        update_thread_metadata(p, "A", boom)
    after = os.stat(p)
    assert p.read_bytes() == data and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert os.listdir(tmp_path) == ["a.md"]


def test_unchanged_metadata_is_not_rewritten(tmp_path: Path) -> None:
    p = write(tmp_path, b"## A\n<!-- crossposter\nskip:    true   # mine\n-->\n")
    ino = os.stat(p).st_ino
    assert update_thread_metadata(p, "A", lambda m: m.update(skip=True)) == {"skip": True}
    assert os.stat(p).st_ino == ino and b"# mine" in p.read_bytes()


def test_permissions_and_symlink_preserved(tmp_path: Path) -> None:
    p = write(tmp_path, b"## A\nx\n")
    os.chmod(p, 0o640)
    link = tmp_path / "link.md"
    link.symlink_to(p.name)
    update_thread_metadata(link, "A", set_skip)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert link.is_symlink() and b"skip: true" in p.read_bytes()


def test_read_only_archive_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, b"## A\nx\n")
    os.chmod(p, 0o444)  # refused even for root (the container): the owner said "read-only"
    with pytest.raises(ArchiveError, match="not writable"):
        update_thread_metadata(p, "A", set_skip)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "os.replace"])
def test_crash_before_rename_leaves_original_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         exchange: bool) -> None:
    import crossposter.metadata as mod

    data = b"\xef\xbb\xbf# T\r\n## A\r\nbody"
    p = write(tmp_path, data)

    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    # both ways of renaming: the exchange where the file system has it, os.replace where not
    monkeypatch.setattr(mod, "_exchange", crash if exchange else lambda a, b: False)
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ArchiveError, match="unchanged"):
        update_thread_metadata(p, "A", set_skip)
    assert p.read_bytes() == data
    assert os.listdir(tmp_path) == ["a.md"]

    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        update_thread_metadata(p, "A", set_skip)
    assert p.read_bytes() == data and os.listdir(tmp_path) == ["a.md"]


def test_temp_files_of_a_killed_writer_are_cleaned(tmp_path: Path) -> None:
    p = write(tmp_path, b"## A\nx\n")
    stale = tmp_path / ".a.md.4242.deadbeef.crossposter-tmp"
    stale.write_bytes(b"half")
    other = tmp_path / ".b.md.4242.deadbeef.crossposter-tmp"  # another archive's: left to its own writer
    other.write_bytes(b"half")
    update_thread_metadata(p, "A", set_skip)
    assert sorted(os.listdir(tmp_path)) == [".b.md.4242.deadbeef.crossposter-tmp", "a.md"]


def test_seed_round_trip(shared_dir: Path, tmp_path: Path) -> None:
    original = (shared_dir / "seed" / "tweets.md").read_bytes()
    p = write(tmp_path, original, "tweets.md")
    for title in ("Würstchen", "Groq", "Table of Contents"):
        update_thread_metadata(p, title, lambda m: m.setdefault("x", []).append({"id": "1862000000000000001"}))
    update_thread_metadata(p, "Groq", lambda m: m.update(skip=True))
    archive = read_archive(p)
    assert archive.find("Groq").skipped == "skip: true"
    assert archive.find("Würstchen").date == "2024-02-13 21:25"
    assert strip_metadata_blocks(p.read_bytes()) == original


# --------------------------------------------------------------------------- property test

ALPHABET = ["a", "Z", "0", " ", "  ", "\t", ".", "#", "-", "*", ">", "`", "[", "]", "(", ")", "!", ":", "<",
            "&", "é", "e\u0301", "😀", "👩\u200d👩\u200d👧", "🇩🇪", "ש", "ل", "\u200f", "中", "—"]
line_text = st.lists(st.sampled_from(ALPHABET), max_size=12).map("".join)


@st.composite
def archives(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Random archive bytes; returns (bytes, has_blocks)."""
    crlf_mode = draw(st.sampled_from(["lf", "crlf", "mixed"]))

    def eol() -> str:
        if crlf_mode == "mixed":
            return draw(st.sampled_from(["\n", "\r\n"]))
        return "\r\n" if crlf_mode == "crlf" else "\n"

    with_blocks = draw(st.booleans())
    out: list[str] = []
    if draw(st.booleans()):
        out += ["# " + draw(line_text), draw(line_text)]
    n = draw(st.integers(1, 15))
    for i in range(n):
        trailing = draw(st.sampled_from(["", " ", "  ", "\t"]))
        out.append(f"## T{i} " + draw(line_text).strip().replace("#", "") + trailing)
        if with_blocks and draw(st.booleans()):
            out += ["<!-- crossposter", f"x: ['{i}']", "-->"]
        if draw(st.booleans()):
            out += [draw(st.sampled_from(["", "2024-02-13 21:25"]))]
        out += [draw(line_text) for _ in range(draw(st.integers(0, 4)))]
    text = "".join(line + eol() for line in out)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, with_blocks


def split_sections(path: Path) -> dict[str, tuple[str, str | None, dict]]:
    """title -> (body, date, metadata) as read back."""
    return {t.title: (t.body, t.date, t.metadata) for t in read_archive(path).threads}


def section_bytes(data: bytes, path: Path, original: bool = False) -> dict[str, bytes]:
    """title -> the raw bytes of the section's lines (heading to end line), from the file's current parse."""
    if original:
        tmp = path.with_name("orig-" + path.name)
        tmp.write_bytes(data)
        threads = read_archive(tmp).threads
        tmp.unlink()
    else:
        threads = read_archive(path).threads
    lines = data.split(b"\n")
    lines = [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return {t.title: b"".join(lines[t.line - 1:t.end_line]) for t in threads}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=archives(), choice=st.integers(0, 100), steps=st.lists(
    st.tuples(st.sampled_from(["bluesky", "mastodon", "x", "schedule", "pending", "clear_pending"]),
              st.lists(st.sampled_from(ALPHABET[:3] + ALPHABET[20:]), max_size=8).map("".join)),
    min_size=1, max_size=5))
def test_recording_preserves_every_other_byte(tmp_path: Path, case: tuple[bytes, bool], choice: int,
                                              steps: list[tuple[str, str]]) -> None:
    original, _with_blocks = case
    p = tmp_path / "gen.md"
    p.write_bytes(original)
    base = strip_metadata_blocks(original)
    threads = read_archive(p).threads
    titles = [t.title for t in threads]
    unique = [t for t in titles if titles.count(t) == 1]
    assume(unique)
    title = unique[choice % len(unique)]
    before = split_sections(p)
    expected = dict(before[title][2])
    orig_target = next(t for t in threads if t.title == title)
    orig_lines = original.split(b"\n")
    cr_line = orig_target.heading_end_line if orig_target.block_line is None else orig_target.block_line
    # a heading on the last line has no line ending of its own: the file's first one is used
    want_cr = (orig_lines[cr_line - 1] if cr_line < len(orig_lines) else original.split(b"\n")[0]).endswith(b"\r")

    previous = original
    for n, (key, value) in enumerate(steps):
        def update(meta: dict, key: str = key, value: str = value, n: int = n) -> None:
            if key in ("bluesky", "mastodon", "x"):
                meta.setdefault(key, []).append({"id": f"{n}{value}", "url": f"https://e.test/{n}", "sha": value})
            elif key == "schedule":
                meta["schedule"] = f"2026-12-0{n + 1}T09:00:00+01:00"
            elif key == "pending":
                meta["pending"] = {"bluesky": {"index": n, "rkey": value or "r", "sha": value}}
            else:
                meta.pop("pending", None)

        update(expected)
        assert update_thread_metadata(p, title, update) == expected
        new = p.read_bytes()
        # (0) a write this process made (key by key, from what it wrote before) is the full rewrite's
        assert new == previous or new == full_rewrite(previous, title, expected)
        # (1) removing the blocks gives back the original bytes
        assert strip_metadata_blocks(new) == base
        if not _with_blocks:
            assert base == original
        # (2) every other section reads back byte for byte the same, (3) the metadata is what we recorded
        after = split_sections(p)
        assert list(after) == list(before)
        for t, section in after.items():
            if t == title:
                assert section[:2] == before[t][:2]
                assert section[2] == expected
            else:
                assert section == before[t]
        # the block uses the heading line's own line ending (CRLF heading -> CRLF block), or keeps the
        # line ending of the block it replaces
        target = read_archive(p).find(title)
        raw_lines = new.split(b"\n")
        if new != previous and target.block_line is not None and target.block_end_line > target.block_line:
            for k in range(target.block_line, target.block_end_line):
                assert raw_lines[k - 1].endswith(b"\r") == want_cr
        # (2b) and byte for byte: every other section's raw lines, line endings and trailing spaces included
        new_sections = section_bytes(new, p)
        for t, raw in section_bytes(original, p, original=True).items():
            if t != title:
                assert new_sections[t] == raw
        previous = new
    assert sorted(os.listdir(tmp_path)) == ["gen.md"]


def full_rewrite(data: bytes, title: str, meta: dict) -> bytes:
    """The file as a first write (nothing remembered) makes it: the whole block rendered afresh."""
    import crossposter.metadata as md
    from crossposter.archive import decode_archive, parse_archive

    thread = parse_archive(decode_archive(data, "x.md"), Path("x.md")).find(title)
    return md._replace_block(data, thread, meta)[0]


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(crlf=st.booleans(), steps=st.lists(st.tuples(
    st.sampled_from(["append", "append2", "replace", "delete", "pending", "unpend", "scalar", "flag"]),
    st.sampled_from(["bluesky", "mastodon", "x", "other"]), _TEXT), min_size=1, max_size=12))
def test_key_by_key_writes_give_the_bytes_of_a_full_rewrite(tmp_path: Path, crlf: bool,
                                                            steps: list[tuple[str, str, str]]) -> None:
    """Recording re-renders only the keys that changed (for a list that grew, only its new entries); whatever
    the sequence of changes, the file must be byte for byte what rendering the whole block gives."""
    eol = "\r\n" if crlf else "\n"
    original = eol.join(["# A", "", "## T", "", "body", "", "## U", "", "other"]).encode() + eol.encode()
    p = tmp_path / "a.md"
    p.write_bytes(original)
    expected: dict = {}
    previous = original
    for n, (op, key, text) in enumerate(steps):
        def update(meta: dict, op: str = op, key: str = key, text: str = text, n: int = n) -> None:
            if op in ("append", "append2"):
                items = meta.get(key) if isinstance(meta.get(key), list) else []
                meta[key] = items  # (a list replaced by a scalar earlier becomes a list again)
                items.append({"id": f"{n}", "url": f"https://e.test/{text}", "sha": text})
                if op == "append2":
                    items.append(text)
            elif op == "replace":
                meta[key] = [text, {"id": text}]
            elif op == "delete":
                meta.pop(key, None)
            elif op == "pending":
                meta["pending"] = {"bluesky": {"index": n, "rkey": text, "created_at": "2026-01-01T00:00:00Z"}}
            elif op == "unpend":
                meta.pop("pending", None)
            elif op == "scalar":
                meta[key] = text
            else:
                meta["queued"] = not meta.get("queued")

        update(expected)
        assert update_thread_metadata(p, "T", update) == expected
        new = p.read_bytes()
        assert new == previous or new == full_rewrite(previous, "T", expected)  # (unchanged: not written)
        assert read_archive(p).find("T").metadata == expected
        assert strip_metadata_blocks(new) == original
        previous = new


def test_a_recorded_entry_cannot_be_changed_in_place(tmp_path: Path) -> None:
    """Entries are shared between what this process remembers and the copy `update` gets (copying each
    entry of a long thread for every write was a third of its cost): changing one in place would change
    what it believes the file holds and never reach the file, so it raises instead."""
    p = write(tmp_path, b"## A\nbody\n")
    update_thread_metadata(p, "A", lambda m: m.setdefault("x", []).append({"id": "1"}))
    with pytest.raises(TypeError, match="cannot be changed in place"):
        update_thread_metadata(p, "A", lambda m: m["x"][0].__setitem__("url", "https://x.com/u/status/1"))
    update_thread_metadata(p, "A", lambda m: m["x"].__setitem__(0, {**m["x"][0], "url": "https://e.test/1"}))
    assert read_archive(p).find("A").metadata == {"x": [{"id": "1", "url": "https://e.test/1"}]}


def test_other_sections_bytes_unchanged_exactly(tmp_path: Path) -> None:
    """Byte-level complement of the property test: everything before and after the block is identical."""
    original = ("\ufeff# Титул\r\n\r\n## שלום\r\n\r\n2024-02-13 21:25\r\nטקסט 😀  \r\n"
                "## Mixed \n<!-- crossposter\nx: ['1']\n-->\nline\t\n## Last 中").encode()
    p = write(tmp_path, original)
    update_thread_metadata(p, "Mixed", lambda m: m["x"].append("2"))
    new = p.read_bytes()
    head, tail = original.split(b"<!-- crossposter")[0], original.split(b"-->")[1]
    assert new.startswith(head) and new.endswith(tail)
    assert new[len(head):len(new) - len(tail)] == b"<!-- crossposter\nx:\n- '1'\n- '2'\n-->"


# --------------------------------------------------------------------------- concurrency


def _append_ids(path: str, prefix: str, count: int) -> None:
    for i in range(count):
        update_thread_metadata(Path(path), "Shared", lambda m, i=i: m.setdefault("bluesky", []).append(
            {"id": f"{prefix}{i}"}))


def test_two_processes_lose_no_update(tmp_path: Path) -> None:
    original = b"# Archive\r\n\r\n## Before\r\ntext\r\n## Shared\r\n\r\nbody \xf0\x9f\x98\x80\r\n## After\r\nend"
    p = write(tmp_path, original)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_ids, args=(str(p), prefix, 50)) for prefix in ("a", "b")]
    for proc in procs:
        proc.start()
    seen = 0
    reads = 0
    while any(proc.is_alive() for proc in procs):
        # a reader between writes always finds a complete, parseable file that only ever grows
        meta = read_archive(p).find("Shared").metadata
        n = len(meta.get("bluesky", []))
        assert n >= seen
        seen = n
        reads += 1
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    ids = [e["id"] for e in thread_metadata(p, "Shared")["bluesky"]]
    assert len(ids) == 100
    for prefix in ("a", "b"):
        assert [i for i in ids if i.startswith(prefix)] == [f"{prefix}{k}" for k in range(50)]
    assert strip_metadata_blocks(p.read_bytes()) == original
    assert os.listdir(tmp_path) == ["a.md"]
    assert reads > 0


def test_threads_of_one_process_lose_no_update(tmp_path: Path) -> None:
    """The publisher records from one thread per platform: the folder lock must serialise threads too."""
    import threading

    original = b"## Shared\nbody\n"
    p = write(tmp_path, original)

    def worker(platform: str) -> None:
        for i in range(25):
            update_thread_metadata(p, "Shared", lambda m, i=i: m.setdefault(platform, []).append({"id": str(i)}))

    workers = [threading.Thread(target=worker, args=(name,)) for name in ("bluesky", "mastodon", "x")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    meta = thread_metadata(p, "Shared")
    assert {k: [e["id"] for e in v] for k, v in meta.items()} == {
        name: [str(i) for i in range(25)] for name in ("bluesky", "mastodon", "x")}
    assert strip_metadata_blocks(p.read_bytes()) == original


def _append_forever(path: str) -> None:
    while True:
        update_thread_metadata(Path(path), "Shared", lambda m: m.setdefault("x", []).append(str(len(m["x"]))))


def test_sigkill_mid_update_never_corrupts(tmp_path: Path) -> None:
    """A writer killed at random moments leaves a complete file (old or new), never a torn one."""
    import random
    import signal
    import time

    original = "\ufeff# Archive\r\n## Shared\r\n\r\n2024-02-13 21:25\r\nbody  \r\n## Next\r\nend".encode()
    p = write(tmp_path, original)
    update_thread_metadata(p, "Shared", lambda m: m.update(x=[]))
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(7)
    for _ in range(5):
        proc = ctx.Process(target=_append_forever, args=(str(p),))
        proc.start()
        time.sleep(rng.uniform(0.6, 1.0))  # spawn start-up takes ~0.4 s; then it writes continuously
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        ids = thread_metadata(p, "Shared")["x"]
        assert ids == [str(i) for i in range(len(ids))]
        assert strip_metadata_blocks(p.read_bytes()) == original
    assert len(ids) > 0
    update_thread_metadata(p, "Shared", lambda m: m["x"].append("last"))
    assert os.listdir(tmp_path) == ["a.md"]  # a temp file left by a killed writer is gone


@pytest.mark.parametrize("corrupt", [
    lambda new: new.replace(b"body", b"bodY"),          # the thread's own text
    lambda new: new.replace(b"## B", b"## b"),          # another section
    lambda new: new.replace(b"skip: true", b"skip: no"),  # the recorded value
])
def test_safety_net_refuses_bytes_that_do_not_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        corrupt: object) -> None:
    import crossposter.metadata as mod

    data = b"## A\nbody\n## B\nx\n"
    p = write(tmp_path, data)
    real = mod._replace_block
    monkeypatch.setattr(mod, "_replace_block",
                        lambda *a: (lambda new, block: (corrupt(new), block))(*real(*a)))  # type: ignore[operator]
    with pytest.raises(ArchiveError, match="nothing was written"):
        update_thread_metadata(p, "A", set_skip)
    assert p.read_bytes() == data and os.listdir(tmp_path) == ["a.md"]


def test_an_editor_saving_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    """Editors do not take our lock: a save between our read and our rename must survive."""
    p = write(tmp_path, b"## A\nbody\n")
    calls = []

    def update(meta: dict) -> None:
        if not calls:  # the "editor" saves while we are working on the first read
            with open(p, "ab") as f:
                f.write(b"added in the editor\n")
        calls.append(1)
        meta["skip"] = True

    update_thread_metadata(p, "A", update)
    assert len(calls) == 2
    assert p.read_bytes() == b"## A\n<!-- crossposter\nskip: true\n-->\nbody\nadded in the editor\n"
    assert os.listdir(tmp_path) == ["a.md"]
