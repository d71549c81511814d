"""The segment stage: RUN/docs -> RUN/sentences/*.parquet, paragraphs and documents kept.

:func:`resolve_params` picks the splitter's parameters (shipped English Punkt, a punkt_tab
directory, or trained on the corpus and saved); :func:`run_segment` runs
:class:`pipeline.segment.transforms.SegmentFileFn` over every docs file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ground.errors import UserError
from pipeline.common import beam_runner, fs, run_report
from pipeline.common.file_stage import PerFile, input_files
from pipeline.common.parquet_io import iter_rows
from pipeline.common.run_report import DONE_MARKER
from pipeline.segment import punkt_params, segment
from pipeline.segment.transforms import SegmentFileFn


@dataclass(frozen=True)
class SegmentOptions:
    """Options of the segment stage: one field per flag of ``segment.cli.add_segment_arguments``.

    Field names are the flags' argparse names (``build`` fingerprints this dataclass).

    Attributes:
        language: ``english`` (shipped Punkt parameters), ``ja``/``zh``, or any name with
            ``punkt_params`` / ``punkt_train``.
        punkt_params: a punkt_tab directory to use (or None).
        punkt_train: learn Punkt parameters from the corpus (saved to RUN/punkt_tab/LANG).
        punkt_train_chars: characters of corpus text the trainer reads.
        max_sentence_chars: longer sentences are cut into pieces of at most this many
            characters (>= 16).
    """

    language: str = "english"
    punkt_params: str | None = None
    punkt_train: bool = False
    punkt_train_chars: int = 3_000_000
    max_sentence_chars: int = 2000


def resolve_params(opts: SegmentOptions, run_dir: str, docs_files: list[str]):
    """PunktParams to use, or None for the language's built-in splitter."""

    if opts.punkt_params and opts.punkt_train:
        raise UserError("give --punkt-params or --punkt-train, not both")
    if opts.punkt_params:
        return punkt_params.read_params(opts.punkt_params)
    if opts.punkt_train:
        saved = fs.join(run_dir, "punkt_tab", opts.language)
        if "://" in saved:
            raise UserError("--punkt-train needs a local run directory (it saves punkt_tab files)")
        if fs.exists(fs.join(saved, "abbrev_types.txt")):
            print(f"segment: reusing Punkt parameters in {saved}", file=sys.stderr)
            return punkt_params.read_params(saved)
        params = punkt_params.train_params(_texts(docs_files), opts.punkt_train_chars)
        punkt_params.write_params(params, saved)
        print(f"segment: trained Punkt parameters -> {saved} {params.counts()}", file=sys.stderr)
        return params
    segment.get_splitter(opts.language)  # validates the language name early
    if opts.language.lower() in ("english", "en"):
        return punkt_params.load_english()
    return None


def _texts(docs_files: list[str]):

    for path in docs_files:
        for row in iter_rows(path, columns=["text"]):
            yield row["text"]


def run_segment(opts: SegmentOptions, run_dir: str, overwrite: bool, extra: list[str]) -> dict:
    """Split RUN/docs into RUN/sentences; returns the stage's counts.

    ``extra``: Beam pipeline arguments.
    """
    import apache_beam as beam  # heavy: imported when the stage runs, not when flags parse

    beam_runner.check_args(extra)
    if opts.max_sentence_chars < 16:
        raise UserError("--max-sentence-chars must be at least 16")
    marker = fs.join(run_dir, "sentences", DONE_MARKER)
    if fs.exists(marker) and not overwrite:
        raise UserError(f"{run_dir}/sentences is already complete; pass --overwrite to redo it")
    docs = input_files(run_dir, "docs", "documents")
    params = resolve_params(opts, run_dir, docs)
    if not beam_runner.is_dry_run(extra):  # a dry run changes nothing
        sentences = fs.join(run_dir, "sentences")
        fs.delete(fs.list_files(fs.join(sentences, "*")) + fs.stale_temps(sentences))
        fs.makedirs(fs.join(run_dir, "sentences"))
        fs.makedirs(fs.join(run_dir, "report"))
    report_path = fs.join(run_dir, "report", "segment.json")
    fn = SegmentFileFn(run_dir, opts.language, params, opts.max_sentence_chars)
    beam_runner.run(
        lambda p: p | "Docs" >> beam.Create(docs) | "Segment" >> PerFile(fn, report_path), extra
    )
    counts = run_report.load_json(report_path)
    counts["language"] = opts.language
    run_report.update_run_report(run_dir, "segment", counts)
    fs.write_bytes(marker, b"")
    return counts
