"""Sentence segmentation speed: our Punkt splitter vs ``nltk.sent_tokenize`` per paragraph.

One process, one core, CPU time (``time.process_time``), so other load on the machine does
not distort the rate. Units: every paragraph of the 17 shared books, the SST-2 dev
sentences, and the shared Wikipedia pages (markup stripped by regex), read exactly as in
``tests/pipeline/segment/test_segment.py``. MB = 10**6 UTF-8 bytes of paragraph text.

- NLTK: ``nltk.sent_tokenize(paragraph)`` warm (its cached tokenizer loaded by a first
  call), parameters from ``../shared/corpora/nltk_data`` (byte-identical to ours).
- ours (cold): a fresh :class:`PunktSplitter`, caches empty, one pass over everything.
- ours (warm): a second pass with the caches filled (a long run over a large corpus).

Every paragraph's sentences are compared with NLTK's; the script fails if any differs.

    .venv/bin/python benchmarks/bench_segment.py [--train] [--shared ../shared/corpora]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.segment.punkt_params import DEFAULT_TRAIN_CHARS, train_params  # noqa: E402
from pipeline.segment.segment import get_splitter, segment_document  # noqa: E402
from tests.pipeline.segment.test_segment import book_paragraphs, shared_units  # noqa: E402


def _rate(func, units: list[str]) -> tuple[float, list]:
    start = time.process_time()
    out = [func(u) for u in units]
    return time.process_time() - start, out


def bench(name: str, units: list[str], nltk_split) -> bool:
    mb = sum(len(u.encode("utf-8")) for u in units) / 1e6
    t_nltk, ref = _rate(nltk_split, units)
    splitter = get_splitter("english")
    t_cold, ours = _rate(splitter, units)
    t_warm, ours2 = _rate(splitter, units)
    same = ours == ref and ours2 == ref
    diff = sum(a != b for a, b in zip(ours, ref))
    print(
        f"{name:<28} {len(units):>7} paragraphs {mb:6.2f} MB | nltk {mb / t_nltk:5.2f} MB/s | "
        f"ours cold {mb / t_cold:6.2f} MB/s ({t_nltk / t_cold:4.1f}x) | "
        f"warm {mb / t_warm:6.2f} MB/s ({t_nltk / t_warm:4.1f}x) | "
        f"identical: {same} ({diff} differ)"
    )
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--train", action="store_true", help="also time train_params")
    args = parser.parse_args()

    import nltk

    nltk.data.path.insert(0, str(args.shared / "nltk_data"))
    nltk.sent_tokenize("Warm up the cached tokenizer. Done.")

    units = shared_units(args.shared)
    books = [p for src, p in units if src.endswith(".txt")]
    wiki = [p for src, p in units if not src.endswith(".txt") and src != "sst2"]
    ok = bench("books", books, nltk.sent_tokenize)
    ok &= bench("wikipedia", wiki, nltk.sent_tokenize)
    ok &= bench("all (books+sst2+wikipedia)", [p for _, p in units], nltk.sent_tokenize)

    splitter = get_splitter("english")
    for label, text in [
        ("10 MB, no punctuation", "lorem ipsum dolor sit amet " * 370_000),
        ("10 MB, no spaces", "x" * 10_000_000),
        ("9 MB of 'a. '", "a. " * 3_000_000),
    ]:
        start = time.process_time()
        _, stats = segment_document(text, splitter)
        print(f"{label:<28} {time.process_time() - start:6.2f} s  cuts={stats['cuts']}")

    if args.train:
        paras = [p for src, p in book_paragraphs(args.shared)]
        start = time.process_time()
        params = train_params(paras, DEFAULT_TRAIN_CHARS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"train_params({DEFAULT_TRAIN_CHARS:,} chars of the books): "
            f"{time.process_time() - start:.1f} s CPU, peak RSS {peak:.0f} MB, {params.counts()}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
