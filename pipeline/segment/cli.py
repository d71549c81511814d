"""Split RUN/docs into sentences: RUN/sentences/*.parquet, paragraphs and documents kept.

English uses NLTK Punkt's parameters shipped inside the package (never downloaded) through a
faster implementation of Punkt's decision rules that gives NLTK's exact boundaries.
--punkt-train learns parameters from the corpus itself (a bounded, deterministic sample of
RUN/docs in file and row order), saves them in punkt_tab format to RUN/punkt_tab/LANGUAGE and
reuses them on later runs. --language ja / zh splits on sentence-final punctuation.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from pipeline.segment.stage import SegmentOptions, run_segment


def add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    """Segmentation flags shared by ``segment`` and ``build``."""
    g = parser.add_argument_group("segmentation")
    g.add_argument(
        "--language",
        default="english",
        help="english (shipped Punkt parameters), ja/japanese, zh/chinese, or any "
        "name together with --punkt-params/--punkt-train (default: english)",
    )
    g.add_argument(
        "--punkt-params",
        metavar="DIR",
        help="a punkt_tab directory (abbrev_types.txt, collocations.tab, ...) to use",
    )
    g.add_argument(
        "--punkt-train",
        action="store_true",
        help="learn Punkt parameters from this corpus (saved to RUN/punkt_tab/LANG)",
    )
    g.add_argument(
        "--punkt-train-chars",
        type=int,
        default=3_000_000,
        help="characters of corpus text the trainer reads (default 3000000; "
        "training costs ~3 s and ~90 MB per MB)",
    )
    g.add_argument(
        "--max-sentence-chars",
        type=int,
        default=2000,
        help="longer 'sentences' are cut into pieces of at most this many characters "
        "(default 2000, ~450 WordPiece tokens)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_segment_arguments(parser)
    parser.add_argument(
        "--output",
        required=True,
        metavar="RUN",
        help="run directory holding docs/ (from bertprep extract)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="redo the segmentation even if RUN/sentences is complete",
    )


def options_from_args(args: argparse.Namespace) -> SegmentOptions:
    """The stage's options from parsed flags (validated by :func:`run_segment`)."""
    return SegmentOptions(**{f.name: getattr(args, f.name) for f in fields(SegmentOptions)})


def run(args: argparse.Namespace, extra: list[str]) -> int:
    run_dir = args.output.rstrip("/")
    counts = run_segment(options_from_args(args), run_dir, args.overwrite, extra)
    print(
        f"segment: {counts.get('docs_out', 0)} documents, {counts.get('sentences', 0)} sentences "
        f"({counts.get('long_sentences', 0)} over the length bound) -> {run_dir}/sentences"
    )
    return 0
