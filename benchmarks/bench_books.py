"""Throughput of the book reader: decode + strip Gutenberg boilerplate + text model.

Usage: .venv/bin/python benchmarks/bench_books.py [--repeat N] [BOOK_DIR]

Reads every ``*.txt`` under BOOK_DIR (default ../shared/corpora/books/gutenberg, the 17 books)
into memory first, so the figures exclude disk I/O. Prints MB/s (input bytes, 10^6) per stage
and for the whole of :func:`pipeline.extract.books.read_book`, best and median over N runs, single
process, CPU time of this process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.common import textnorm  # noqa: E402
from pipeline.extract import books, gutenberg, textdecode  # noqa: E402


def _timed(fn, inputs: list) -> tuple[float, list]:
    start = time.process_time()
    out = [fn(x) for x in inputs]
    return time.process_time() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "book_dir", nargs="?", default=ROOT.parent / "shared/corpora/books/gutenberg"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paths = sorted(Path(args.book_dir).glob("*.txt"))
    if not paths:
        print(f"no .txt files under {args.book_dir}", file=sys.stderr)
        return 2
    raws = [p.read_bytes() for p in paths]
    mb = sum(len(r) for r in raws) / 1e6
    stages: dict[str, list[float]] = {"decode": [], "strip": [], "text model": [], "total": []}
    for _ in range(args.repeat):
        t_dec, texts = _timed(lambda r: textdecode.decode_text(r)[0], raws)
        t_strip, bodies = _timed(lambda t: gutenberg.strip_book(t)[0], texts)
        t_model, _ = _timed(
            lambda b: "\n".join(p for p in books.paragraphs(b) if not textnorm.is_heading(p)),
            bodies,
        )
        t_total, records = _timed(lambda r: books.read_book(r, "bench.txt").record, raws)
        for name, t in zip(stages, (t_dec, t_strip, t_model, t_total)):
            stages[name].append(t)
    words = sum(len(r.text.split()) for r in records)
    print(f"{len(paths)} books, {mb:.2f} MB in, {words} words out, {args.repeat} runs (CPU time)")
    for name, times in stages.items():
        best, median = min(times), statistics.median(times)
        print(f"  {name:<11} best {mb / best:7.2f} MB/s   median {mb / median:7.2f} MB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
