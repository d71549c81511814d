"""Benchmark of the whole `bertprep instances` stage (Beam, HDF5 shards) on the 17 shared books.

Input: the 17 books of ../shared/corpora/books/gutenberg in the classic sentence-per-line format
(Gutenberg boilerplate stripped by `bertprep extract`, paragraphs split by `bertprep segment`,
one book = one document), written once, then 4 distinct copies (4 files) for the "x4" input.
Settings: seq 128, dupe 5, max predictions 20, bert-base-uncased vocab, 8 shards.

Prints instances/s (wall) for 1x and x4 with 1 worker and x4 with 2 workers, start-up (the same
command on a one-document input), and the peak RSS of the in-process 1-worker run for 1x and x4.
The classic pure-Python builder does about 1,900 instances/s per core here (issue #4).

Usage: .venv/bin/python benchmarks/bench_instances_stage.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
VOCAB = ROOT / "corpus" / "vocab" / "bert-base-uncased-vocab.txt"
FLAGS = [
    "--max-seq-length",
    "128",
    "--max-predictions-per-seq",
    "20",
    "--dupe-factor",
    "5",
    "--num-shards",
    "8",
    "--vocab",
    str(VOCAB),
]


def bertprep(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "bertprep", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def classic_books(tmp: Path) -> Path:
    run = tmp / "prep"
    bertprep("extract", "--books", str(SHARED / "books" / "gutenberg"), "--output", str(run))
    bertprep("segment", "--output", str(run))
    lines = []
    for f in sorted((run / "sentences").glob("*.parquet")):
        for row in pq.read_table(f).to_pylist():
            lines += [s for para in row["paragraphs"] for s in para] + [""]
    out = tmp / "books.txt"
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def timed_instances(inputs: list[Path], out: Path, *extra: str) -> tuple[float, int, float]:
    """(wall s, training instances, peak RSS MB of the launching process + in-process worker)."""
    code = (
        "import resource,sys;from bertprep.cli import main;"
        "rc=main(sys.argv[1:]);"
        "print('RSS',resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    args = [
        "instances",
        *[a for p in inputs for a in ("--input", str(p))],
        "--output",
        str(out),
        *FLAGS,
        *extra,
    ]
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    rss = int(res.stdout.split("RSS")[-1]) / 1024
    rep = json.loads((out / "report.json").read_text())["instances"]["seq128"]
    return wall, rep["training"] + rep["validation"], rss


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-inst-"))
    try:
        books = classic_books(tmp)
        mb = books.stat().st_size / 1e6
        copies = []
        for i in range(4):
            copies.append(tmp / f"books{i}.txt")
            shutil.copy(books, copies[-1])
        tiny = tmp / "tiny.txt"
        tiny.write_text("One short document.\nWith two sentences.\n")
        start = {}
        for w in (1, 2):  # fixed cost: imports, pipeline, and (2 workers) process spawn
            start[w], _, _ = timed_instances(
                [tiny], tmp / f"r0-{w}", "--num-shards", "1", "--direct_num_workers", str(w)
            )
        print(
            f"input: {mb:.1f} MB of classic text (17 books); start-up {start[1]:.1f} s "
            f"(1 worker), {start[2]:.1f} s (2 worker processes)"
        )
        rows = [
            ("1x, 1 worker", [books], []),
            ("x4, 1 worker", copies, []),
            ("x4, 2 workers", copies, ["--direct_num_workers", "2"]),
        ]
        rates = {}
        for label, inputs, extra in rows:
            wall, n, rss = timed_instances(
                inputs, tmp / label.replace(" ", "").replace(",", ""), *extra
            )
            rates[label] = n / (wall - start[2 if "2 workers" in label else 1])
            print(
                f"{label:14s}: {n:8d} instances in {wall:6.1f} s = {n / wall:8.0f}/s "
                f"({rates[label]:8.0f}/s without start-up), peak RSS {rss:.0f} MB"
                + ("" if "2 workers" in label else " (in-process worker)")
            )
        print(
            f"vs classic 1,900/s: x4 1 worker {rates['x4, 1 worker'] / 1900:.1f}x; "
            f"2 workers / 1 worker = {rates['x4, 2 workers'] / rates['x4, 1 worker']:.2f}x"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
