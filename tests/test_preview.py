"""`crossposter preview`: the real command line on the seed archive and on the bundled example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossposter import counting

ROOT = Path(__file__).resolve().parent.parent


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
