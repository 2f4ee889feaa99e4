"""Peak memory of the preview on big archives and of the image check on huge images, each in its own child.

Targets (issue 10): the preview's memory grows no faster than a small multiple of the archive (it once took
1.7 GB for a 50 MB archive); the image check decodes at most `image_limits.MAX_PIXELS` pixels (a 0.6 MB PNG
of 13000 x 13000 pixels once cost 2 GB to check).

Each measurement runs in a fresh child process and reads that child's own peak resident set size
(`os.wait4`'s rusage, `ru_maxrss`). Linux keeps a process's peak across `exec`, and a forked child starts
as a copy of its parent, so the inputs are made by other children and this process stays small. `--old-commit C` measures the same with the `crossposter` package of
commit C too (exported with git archive), for a before/after.

Run: python benchmarks/memory.py [--mb 10 50] [--formats json text] [--old-commit COMMIT]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak(cmd: list[str], tree: Path, cwd: Path) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit code) of `cmd` run with `tree` first on the import path."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        if "Traceback" in err:
            print(err[-1500:], file=sys.stderr)
    return usage.ru_maxrss / 1024, wall, proc.returncode  # ru_maxrss is in KiB on Linux


_MAKE_IMAGES = """
import sys
from pathlib import Path
from PIL import Image
folder = Path(sys.argv[1])
Image.new("RGB", (13000, 13000), (20, 40, 60)).save(folder / "huge-13000x13000.png")
Image.linear_gradient("L").convert("RGB").resize((9000, 7000)).save(folder / "photo-9000x7000.jpg", quality=85)
Image.linear_gradient("L").convert("RGB").resize((4032, 3024)).save(folder / "photo-4032x3024.jpg", quality=85)
"""

_MAKE_ARCHIVE = """
import sys
sys.path.insert(0, sys.argv[3])
from pipeline import generate
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write(generate(int(float(sys.argv[2]) * 1_000_000)))
"""


def _images(folder: Path) -> dict[str, Path]:
    subprocess.run([sys.executable, "-c", _MAKE_IMAGES, str(folder)], check=True)
    return {"PNG 13000×13000 (169 MP, 0.5 MB)": folder / "huge-13000x13000.png",
            "JPEG 9000×7000 (63 MP)": folder / "photo-9000x7000.jpg",
            "JPEG 4032×3024 (12 MP, a phone photo)": folder / "photo-4032x3024.jpg"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, nargs="*", default=[10, 50], help="archive sizes in MB")
    ap.add_argument("--formats", nargs="*", default=["json", "text"], choices=("json", "text", "html"))
    ap.add_argument("--old-commit", help="also measure this commit's package")
    ap.add_argument("--no-images", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        trees = [("this tree", ROOT)]
        if args.old_commit:
            old = tmp / "old"
            old.mkdir()
            data = subprocess.run(["git", "-C", str(ROOT), "archive", args.old_commit, "crossposter"], check=True,
                                  capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=data, check=True)
            trees.append((args.old_commit, old))
        base, _, _ = peak([sys.executable, "-c", "import crossposter.commands.preview, crossposter.plan"], ROOT, tmp)
        print(f"baseline: the interpreter with the preview's modules imported: {base:.0f} MB")
        for mb in args.mb:
            archive = tmp / f"generated-{mb:g}mb.md"
            subprocess.run([sys.executable, "-c", _MAKE_ARCHIVE, str(archive), str(mb), str(ROOT / "benchmarks")],
                           check=True)
            size = archive.stat().st_size / 1e6
            for fmt in args.formats:
                for name, tree in trees:
                    out = tmp / f"out.{fmt}"
                    out.unlink(missing_ok=True)
                    rss, wall, code = peak([sys.executable, "-m", "crossposter", "preview", str(archive), "--format",
                                            fmt, "-o", str(out)], tree, tmp)
                    print(f"preview {size:.1f} MB archive, --format {fmt:<4} -o FILE  [{name}]: peak {rss:7.0f} MB "
                          f"= {rss / size:5.1f}x the archive ({(rss - base) / size:4.1f}x above the baseline), "
                          f"{wall:.0f} s, exit {code}")
        if args.no_images:
            return
        for label, path in _images(tmp).items():
            for name, tree in trees:
                for how, code in (("header (preview)", "from crossposter.image_header import problem as check"),
                                  ("Pillow (pre-flight)", "from crossposter.images import check_image as check")):
                    rss, wall, _ = peak([sys.executable, "-c", f"{code}; import sys; print(check(sys.argv[1]))",
                                         str(path)], tree, tmp)
                    print(f"image check, {label:<38} {how:<20} [{name}]: peak {rss:6.0f} MB, {wall:.2f} s")


if __name__ == "__main__":
    main()
