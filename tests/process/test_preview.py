"""`crossposter preview`: the real command line on the seed archive and on the bundled example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossposter import counting

ROOT = Path(__file__).resolve().parents[2]


def preview(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crossposter", "preview", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _seed_missing_image_lines(seed: Path) -> dict[str, list[int]]:
    """Independently of the program: which `##` thread each `![...](...)` line belongs to."""
    out: dict[str, list[int]] = {}
    title = None
    for n, line in enumerate(seed.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith("## "):
            title = line[3:].strip()
        elif line.strip().startswith("![") and title:
            out.setdefault(title, []).append(n)
    return out


@pytest.fixture(scope="module")
def seed_json(shared_dir: Path) -> tuple[dict, int]:
    proc = preview(str(shared_dir / "seed" / "tweets.md"), "--format", "json")
    return json.loads(proc.stdout), proc.returncode


def test_seed_has_seven_threads_and_the_toc_skipped(seed_json) -> None:
    doc, _ = seed_json
    threads = doc["threads"]
    assert [t["title"] for t in threads if not t["skipped"]] == [
        "Würstchen", "Mixtral of Experts", "Aespa - Post-Training Quantization of Hyper-Scale Transformers",
        "Aya", "Scalable Diffusion Models with Transformers", "SambaNova Systems", "Groq"]
    skipped = [t for t in threads if t["skipped"]]
    assert [(t["title"], t["skip_reason"]) for t in skipped] == [("Table of Contents", "table of contents")]


def test_seed_missing_images_are_errors_with_their_lines(seed_json, shared_dir: Path) -> None:
    doc, code = seed_json
    assert code == 1
    expected = _seed_missing_image_lines(shared_dir / "seed" / "tweets.md")
    assert len(expected) == 3
    image_errors = {t["title"]: [e["line"] for e in t["errors"] if "not found" in e["message"]]
                    for t in doc["threads"]}
    assert {title: lines for title, lines in image_errors.items() if lines} == expected
    others = [(t["title"], e) for t in doc["threads"] for e in t["errors"] if "not found" not in e["message"]]
    assert all(title == "Würstchen" and "repeats post" in e["message"] for title, e in others), others


def test_seed_repeated_posts_are_errors_on_x_only(seed_json, shared_dir: Path) -> None:
    """The seed's Würstchen thread has two identical `###` sections (lines 53/63 and 58/68): X refuses a repeat
    ("duplicate content") mid-thread, Bluesky and Mastodon post it. Found at the repeat's line, for X."""
    doc, _ = seed_json
    lines = (shared_dir / "seed" / "tweets.md").read_text(encoding="utf-8").splitlines()
    assert lines[52] == lines[62] == "### What are the efficiency gains?"
    assert lines[57] == lines[67] == "### How did they manage to attain them?"
    t = next(t for t in doc["threads"] if t["title"] == "Würstchen")
    repeats = [e for e in t["errors"] if "repeats post" in e["message"]]
    assert [(e["line"], e["platform"]) for e in repeats] == [(63, "x"), (68, "x")]
    assert "(line 53)" in repeats[0]["message"] and "(line 58)" in repeats[1]["message"]
    assert "X refuses a repeated post" in repeats[0]["message"]
    # and `post` refuses it before the first request (the pre-flight is the same plan), on X only
    proc = subprocess.run([sys.executable, "-m", "crossposter", "post", str(shared_dir / "seed" / "tweets.md"),
                           "-t", "Würstchen", "-p", "x", "--dry-run"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert "tweets.md:63: [x] post 4 repeats post 2 (line 53)" in proc.stderr


def test_seed_json_lengths_are_the_platform_rule_and_within_limits(seed_json) -> None:
    doc, _ = seed_json
    for t in doc["threads"]:
        if t["skipped"]:
            continue
        assert set(t["platforms"]) == {"bluesky", "mastodon", "x"}
        for name, pp in t["platforms"].items():
            assert pp["limit"] == {"bluesky": 300, "mastodon": 500, "x": 280}[name]
            assert pp["posts"]
            for post in pp["posts"]:
                assert post["length"] == counting.length(name, post["text"])
                assert post["length"] <= pp["limit"]
                assert post["text"] == post["text"].strip()


def test_seed_links_are_written_out_on_mastodon_and_x_and_faceted_on_bluesky(seed_json) -> None:
    doc, _ = seed_json
    mixtral = next(t for t in doc["threads"] if t["title"] == "Mixtral of Experts")
    url = "https://huggingface.co/spaces/lmsys/chatbot-arena-leaderboard"
    for name in ("mastodon", "x"):
        assert any(f"LMSys {url}" in p["text"] for p in mixtral["platforms"][name]["posts"])
    bsky = [p for p in mixtral["platforms"]["bluesky"]["posts"] if {"url": url} in p["links"]]
    assert len(bsky) == 1
    post = bsky[0]
    facet = next(f for f in post["facets"] if f["value"] == url)
    assert post["text"].encode()[facet["byte_start"]:facet["byte_end"]].decode() == "LMSys"


def test_crlf_and_bom_copies_preview_the_same(tmp_path: Path, shared_dir: Path) -> None:
    original = (shared_dir / "seed" / "tweets.md").read_bytes()
    (tmp_path / "lf.md").write_bytes(original)
    (tmp_path / "crlf.md").write_bytes(b"\xef\xbb\xbf" + original.replace(b"\n", b"\r\n"))
    docs = []
    for name in ("lf.md", "crlf.md"):
        proc = preview(name, "--format", "json", cwd=tmp_path)
        doc = json.loads(proc.stdout)
        for t in doc["threads"]:
            t.pop("archive")
            for e in t["errors"]:
                e["message"] = e["message"].replace(name, "X")
        docs.append(doc)
    assert docs[0] == docs[1]


def test_thread_and_platform_filters(shared_dir: Path) -> None:
    proc = preview(str(shared_dir / "seed" / "tweets.md"), "--format", "json", "--thread", "Aya", "-p", "x")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [t["title"] for t in doc["threads"]] == ["Aya"]
    assert list(doc["threads"][0]["platforms"]) == ["x"]


def test_unknown_thread_and_missing_path_are_clear_errors(tmp_path: Path, shared_dir: Path) -> None:
    proc = preview(str(shared_dir / "seed" / "tweets.md"), "--thread", "Nope")
    assert proc.returncode == 2 and "no thread titled 'Nope'" in proc.stderr
    proc = preview(str(tmp_path / "missing.md"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_bundled_example_previews_without_errors() -> None:
    proc = preview("threads/", "--format", "json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    doc = json.loads(proc.stdout)
    live = [t for t in doc["threads"] if not t["skipped"]]
    assert len(live) >= 2
    assert any(img for t in live for p in t["platforms"]["bluesky"]["posts"] for img in p["images"])


def test_text_format_shows_counts_and_problems(shared_dir: Path) -> None:
    proc = preview(str(shared_dir / "seed" / "tweets.md"), "--thread", "Groq")
    assert proc.returncode == 1
    # One problem per line, never folded at the 80 columns of a pipe, however long the archive's path.
    problems = [line for line in proc.stdout.splitlines() if line.startswith("error ")]
    assert len(problems) == 2, proc.stdout
    assert "tweets.md:268: image file 'imgs/groq-dataflow.jpg' not found (looked for " in problems[0]
    assert problems[0].endswith("add the file or fix the path, which is relative to the archive")
    assert "/280" in proc.stdout and "/300" in proc.stdout and "/500" in proc.stdout


def test_image_outside_folder_and_non_image_are_errors_empty_alt_a_warning(tmp_path: Path) -> None:
    (tmp_path / "arch").mkdir()
    (tmp_path / "outside.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "arch" / "notes.png").write_text("not an image", encoding="utf-8")
    from PIL import Image

    Image.new("RGB", (4, 4), "red").save(tmp_path / "arch" / "ok.png")
    (tmp_path / "arch" / "a.md").write_text(
        "## T\n\nText one.\n\n![](ok.png)\n\n![x](../outside.png)\n\n![y](notes.png)\n", encoding="utf-8")
    proc = preview("arch/a.md", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1
    (t,) = json.loads(proc.stdout)["threads"]
    assert [w["line"] for w in t["warnings"]] == [5]
    errors = {e["line"]: e["message"] for e in t["errors"]}
    assert set(errors) == {7, 9}
    assert "outside the archive's folder" in errors[7]


# --------------------------------------------------------------------------- --output never destroys a file


ARCHIVE = "# Mine\n\n## A thread\n\nMy only copy of this text.\n"


def _archive(tmp_path: Path) -> Path:
    path = tmp_path / "a.md"
    path.write_text(ARCHIVE, encoding="utf-8")
    return path


@pytest.mark.parametrize("how", ["same", "dot", "absolute", "symlink", "hardlink"])
def test_output_onto_an_input_archive_is_refused_even_with_force(how: str, tmp_path: Path) -> None:
    import os

    archive = _archive(tmp_path)
    target = {"same": "a.md", "dot": "./a.md", "absolute": str(archive)}.get(how)
    if how == "symlink":
        os.symlink("a.md", tmp_path / "link.md")
        target = "link.md"
    elif how == "hardlink":
        os.link(archive, tmp_path / "hard.md")
        target = "hard.md"
    for force in ((), ("--force",)):
        proc = preview("a.md", "-o", str(target), *force, cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout
        assert "input of this preview" in proc.stderr
        assert archive.read_text(encoding="utf-8") == ARCHIVE
    proc = preview(".", "--format", "json", "-o", str(target), cwd=tmp_path)  # the archive found in a folder
    assert proc.returncode == 2 and archive.read_text(encoding="utf-8") == ARCHIVE


def test_output_replaces_an_earlier_preview_but_nothing_else_without_force(tmp_path: Path) -> None:
    _archive(tmp_path)
    for fmt, name in (("json", "p.json"), ("html", "p.html"), ("text", "p.txt")):
        first = preview("a.md", "--format", fmt, "-o", name, cwd=tmp_path)
        again = preview("a.md", "--format", fmt, "-o", name, cwd=tmp_path)
        assert first.returncode == again.returncode == 0, (fmt, again.stderr)
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n", encoding="utf-8")
    proc = preview("a.md", "-o", "notes.txt", cwd=tmp_path)
    assert proc.returncode == 2 and "not a crossposter preview" in proc.stderr and "--force" in proc.stderr
    assert notes.read_text(encoding="utf-8") == "shopping list\n"
    proc = preview("a.md", "--format", "json", "-o", "p.html", cwd=tmp_path)  # a preview in another format
    assert proc.returncode == 0 and json.loads((tmp_path / "p.html").read_text(encoding="utf-8"))["threads"]
    proc = preview("a.md", "--format", "json", "-o", "notes.txt", "--force", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(notes.read_text(encoding="utf-8"))["threads"][0]["title"] == "A thread"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "notes.txt", "p.html", "p.json", "p.txt"]


def test_output_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A preview that fails half-way leaves the earlier preview whole and no temp file behind."""
    from crossposter.commands import preview as cmd

    _archive(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cmd.run([Path("a.md")], None, None, "json", Path("p.json"), False, None) == 0
    before = (tmp_path / "p.json").read_bytes()

    def broken(plans, out):  # noqa: ANN001, ANN202
        out.write('{\n  "threads": [')
        raise RuntimeError("disk full")

    monkeypatch.setattr(cmd, "write_json", broken)
    with pytest.raises(RuntimeError):
        cmd.run([Path("a.md")], None, None, "json", Path("p.json"), False, None)
    assert (tmp_path / "p.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "p.json"]


def test_streamed_json_is_the_document_json_dumps_writes(tmp_path: Path) -> None:
    import io

    from crossposter.commands.preview import plans_to_json, write_json
    from crossposter.plan import PlanOptions, plan_paths

    plans = plan_paths([ROOT / "threads"], PlanOptions(decode_images=False))
    assert len(plans) > 2
    for some in (plans, plans[:1], []):
        out = io.StringIO()
        write_json(iter(some), out)
        assert out.getvalue() == json.dumps(plans_to_json(some), ensure_ascii=False, indent=2) + "\n"


def _limited() -> None:  # a child that must not eat the machine if the archive reader regresses
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("what", ["/dev/zero", "fifo"])
def test_preview_of_a_device_or_a_fifo_is_a_one_line_error(what: str, tmp_path: Path) -> None:
    import os

    path = what
    if what == "fifo":
        path = str(tmp_path / "pipe.md")
        os.mkfifo(path)
    proc = subprocess.run([sys.executable, "-m", "crossposter", "preview", path, "--format", "json"],
                          capture_output=True, text=True, timeout=60, preexec_fn=_limited)
    assert proc.returncode == 1, proc.stderr[-2000:]
    (t,) = json.loads(proc.stdout)["threads"]
    (error,) = t["errors"]
    assert "not an archive file" in error["message"] and t["archive"].endswith(Path(path).name)


def test_schedule_of_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    (tmp_path / "crossposter.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "crossposter", "schedule", str(fifo), "--thread", "x", "--at",
                           "2030-01-01 10:00", "--config", str(tmp_path / "crossposter.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "FIFO" in proc.stderr and "Traceback" not in proc.stderr


def test_an_image_that_is_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    import os

    from crossposter import image_header

    os.mkfifo(tmp_path / "pic.png")
    assert "not a regular file" in (image_header.problem(tmp_path / "pic.png") or "")
    (tmp_path / "a.md").write_text("## T\n\nText.\n\n![a picture](pic.png)\n", encoding="utf-8")
    for fmt in ("json", "html"):
        proc = subprocess.run([sys.executable, "-m", "crossposter", "preview", "a.md", "--format", fmt, "-o",
                               f"out.{fmt}"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
    (t,) = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["threads"]
    assert [e["line"] for e in t["errors"]] == [5]
