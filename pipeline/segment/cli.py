"""Split RUN/docs into sentences: RUN/sentences/*.parquet, paragraphs and documents kept.

English uses NLTK Punkt's parameters shipped inside the package (never downloaded) through a
faster implementation of Punkt's decision rules that gives NLTK's exact boundaries.
--punkt-train learns parameters from the corpus itself (a bounded, deterministic sample of
RUN/docs in file and row order), saves them in punkt_tab format to RUN/punkt_tab/LANGUAGE and
reuses them on later runs. --language ja / zh splits on sentence-final punctuation.
"""

from __future__ import annotations

import argparse
import sys

from ground.errors import UserError
from pipeline.common import beam_runner, fs, run_report
from pipeline.common.run_report import DONE_MARKER


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


def resolve_params(args: argparse.Namespace, run_dir: str, docs_files: list[str]):
    """PunktParams to use, or None for the language's built-in splitter."""
    from pipeline.segment import punkt_params, segment

    if args.punkt_params and args.punkt_train:
        raise UserError("give --punkt-params or --punkt-train, not both")
    if args.punkt_params:
        return punkt_params.read_params(args.punkt_params)
    if args.punkt_train:
        saved = fs.join(run_dir, "punkt_tab", args.language)
        if "://" in saved:
            raise UserError("--punkt-train needs a local run directory (it saves punkt_tab files)")
        if fs.exists(fs.join(saved, "abbrev_types.txt")):
            print(f"segment: reusing Punkt parameters in {saved}", file=sys.stderr)
            return punkt_params.read_params(saved)
        params = punkt_params.train_params(_texts(docs_files), args.punkt_train_chars)
        punkt_params.write_params(params, saved)
        print(f"segment: trained Punkt parameters -> {saved} {params.counts()}", file=sys.stderr)
        return params
    segment.get_splitter(args.language)  # validates the language name early
    if args.language.lower() in ("english", "en"):
        return punkt_params.load_english()
    return None


def _texts(docs_files: list[str]):
    from pipeline.common.parquet_io import iter_rows

    for path in docs_files:
        for row in iter_rows(path, columns=["text"]):
            yield row["text"]


def run(args: argparse.Namespace, extra: list[str]) -> int:
    import apache_beam as beam

    from pipeline.common.file_stage import PerFile, input_files
    from pipeline.segment.transforms import SegmentFileFn

    run_dir = args.output.rstrip("/")
    beam_runner.check_args(extra)
    if args.max_sentence_chars < 16:
        raise UserError("--max-sentence-chars must be at least 16")
    marker = fs.join(run_dir, "sentences", DONE_MARKER)
    if fs.exists(marker) and not args.overwrite:
        raise UserError(f"{run_dir}/sentences is already complete; pass --overwrite to redo it")
    docs = input_files(run_dir, "docs", "documents")
    params = resolve_params(args, run_dir, docs)
    if not beam_runner.is_dry_run(extra):  # a dry run changes nothing
        fs.delete(fs.list_files(fs.join(run_dir, "sentences", "*")))
        fs.makedirs(fs.join(run_dir, "sentences"))
        fs.makedirs(fs.join(run_dir, "report"))
    report_path = fs.join(run_dir, "report", "segment.json")
    fn = SegmentFileFn(run_dir, args.language, params, args.max_sentence_chars)
    beam_runner.run(
        lambda p: p | "Docs" >> beam.Create(docs) | "Segment" >> PerFile(fn, report_path), extra
    )
    counts = run_report.load_json(report_path)
    counts["language"] = args.language
    run_report.update_run_report(run_dir, "segment", counts)
    fs.write_bytes(marker, b"")
    print(
        f"segment: {counts.get('docs_out', 0)} documents, {counts.get('sentences', 0)} sentences "
        f"({counts.get('long_sentences', 0)} over the length bound) -> {run_dir}/sentences"
    )
    return 0
