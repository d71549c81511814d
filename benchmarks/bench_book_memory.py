"""Peak memory of ``bertprep extract`` on one large book, by size and line layout.

A book is read whole (one book is one document), so its peak is a multiple of its size; the
cap (``pipeline.extract.books.BookOptions.max_bytes``) bounds it: a larger file is rejected
``too_large`` after reading the cap plus one byte. Books are made from a real Gutenberg text
(Dracula, repeated to the size) either as distributed (short lines) or as a single line
(the worst case for line splitting). Each extraction runs in its own process (one Beam worker,
in-process), and the peak is that process's max RSS minus the same run on a 100 kB book.

    .venv/bin/python benchmarks/bench_book_memory.py [--sizes-mb 4,16,50] [--layouts lines,one]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "corpus" / "books" / "345-8.txt"  # Dracula, bundled


def make_book(path: Path, size: int, layout: str) -> None:
    text = SOURCE.read_bytes()
    start = text.index(b"\n", text.index(b"*** START OF")) + 1
    text = text[start : text.index(b"*** END OF")]  # the body: no licence text repeated
    if layout == "one":
        text = b" ".join(text.split())
    reps = size // len(text) + 1
    path.write_bytes((text + b"\n" if layout == "lines" else text + b" ") * reps)
    with open(path, "r+b") as f:
        f.truncate(size)


def peak_mib(book_dir: Path, out: Path) -> tuple[float, float, str]:
    """(max RSS MiB of one extract process, wall s, the documents line)."""
    code = (
        "import resource, sys\n"
        "from bertprep.cli import main\n"
        f"rc = main(['extract', '--books', {str(book_dir)!r}, '--output', {str(out)!r}])\n"
        "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    rss = next((int(x.split()[1]) for x in res.stderr.splitlines() if x.startswith("RSS ")), 0)
    if not rss:
        sys.exit(f"extract failed: {res.stderr[-2000:]}")
    docs = next((x for x in res.stdout.splitlines() if x.startswith("documents in")), "")
    if res.returncode:  # e.g. the whole book rejected: its reason is the outcome
        docs = res.stderr.strip().splitlines()[-2][:120]
    return rss / 1024, wall, docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes-mb", default="1,4,16,60")
    ap.add_argument("--layouts", default="lines,one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base_dir = tmp / "base"
        base_dir.mkdir()
        make_book(base_dir / "b.txt", 100_000, "lines")
        base, _, _ = peak_mib(base_dir, tmp / "base-out")
        print(f"baseline (a 100 kB book): {base:.0f} MiB max RSS")
        print(
            "| layout | book MB | max RSS MiB | above baseline MiB | x book size | wall s "
            "| outcome |"
        )
        print("|---|---|---|---|---|---|---|")
        for layout in args.layouts.split(","):
            for mb in (float(x) for x in args.sizes_mb.split(",")):
                d = tmp / f"{layout}-{mb}"
                d.mkdir()
                size = int(mb * 1e6)
                make_book(d / "b.txt", size, layout)
                rss, wall, docs = peak_mib(d, tmp / f"out-{layout}-{mb}")
                extra = rss - base
                print(
                    f"| {layout} | {mb:g} | {rss:.0f} | {extra:.0f} | {extra * 2**20 / size:.1f} "
                    f"| {wall:.1f} | {docs} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
