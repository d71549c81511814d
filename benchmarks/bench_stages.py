"""Throughput of the Beam segment stage and of the vocab stage's word counting.

Extracts ../shared/corpora (17 books + the 7 Wikipedia samples) once, then times, with 1 and 2
worker processes: `bertprep segment` (MB of document text per second, wall) and the Beam word
counting of `bertprep vocab` (`cli.count_words`, MB/s wall), and the WordPiece training
from those counts at 30522 entries (s, in-process).

Usage: .venv/bin/python benchmarks/bench_stages.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"


def bertprep(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bertprep", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    from pipeline.vocab import cli, wordpiece

    tmp = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    try:
        run = tmp / "run"
        bertprep(
            "extract",
            "--books",
            str(SHARED / "books" / "gutenberg"),
            "--wikipedia",
            str(SHARED / "wikipedia" / "*"),
            "--output",
            str(run),
        )
        mb = (
            sum(
                len(t.encode())
                for f in (run / "docs").glob("*.parquet")
                for t in pq.read_table(f, columns=["text"]).column("text").to_pylist()
            )
            / 1e6
        )
        print(f"document text: {mb:.1f} MB")
        for workers in (1, 2):
            wall = bertprep(
                "segment", "--output", str(run), "--overwrite", "--direct_num_workers", str(workers)
            )
            print(
                f"segment, {workers} worker(s): {wall:5.1f} s wall = {mb / wall:5.2f} MB/s "
                "(includes ~3 s of Beam start-up)"
            )
        (run / "vocab").mkdir(exist_ok=True)
        for workers in (1, 2):
            t0 = time.perf_counter()
            counts = cli.count_words(str(run), True, None, ["--direct_num_workers", str(workers)])
            wall = time.perf_counter() - t0
            print(
                f"word counting in Beam, {workers} worker(s): {wall:5.1f} s = "
                f"{mb / wall:5.2f} MB/s ({len(counts)} distinct words)"
            )
        t0 = time.perf_counter()
        trained = wordpiece.train_wordpiece(counts, wordpiece.WordPieceConfig(vocab_size=30522))
        print(
            f"WordPiece training to {len(trained.tokens)} entries: {time.perf_counter() - t0:.1f} s"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
