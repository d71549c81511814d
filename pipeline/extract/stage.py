"""The extract stage: raw inputs -> RUN/docs, RUN/rejected, RUN/report/extract.json.

:func:`run_extract` plans the work units (:func:`pipeline.extract.units.plan_units`), clears a
previous extraction's files, runs :class:`pipeline.extract.transforms.ExtractDocuments` and
writes the counts into RUN/report.json and the ``_SUCCESS`` marker.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ground.errors import UserError
from pipeline.common import beam_runner, fs, run_report
from pipeline.common.records import CORPUS
from pipeline.common.run_report import DONE_MARKER
from pipeline.extract import corpora, corpus_parquet
from pipeline.extract.core import ExtractOptions, corpus_options
from pipeline.extract.transforms import ExtractDocuments
from pipeline.extract.units import Unit, plan_units


@dataclass(frozen=True)
class ExtractInputs:
    """What the extract stage reads: paths or globs on any Beam filesystem, per kind, and the
    size of a multistream dump's work ranges (MiB of compressed data)."""

    wikipedia: tuple[str, ...] = ()
    books: tuple[str, ...] = ()
    corpus: tuple[str, ...] = ()
    range_mb: float = 16


def run_extract(
    inputs: ExtractInputs,
    options: ExtractOptions,
    run_dir: str,
    overwrite: bool,
    extra: list[str],
) -> dict:
    """Extract every input into ``run_dir``; returns the stage's counts (RUN/report.json's top).

    ``extra``: Beam pipeline arguments.
    """
    import apache_beam as beam  # Beam (~1 s): only once a pipeline is built

    if not (inputs.wikipedia or inputs.books or inputs.corpus):
        raise UserError("give at least one input: --wikipedia, --books or --corpus")
    beam_runner.check_args(extra)
    marker = fs.join(run_dir, "docs", DONE_MARKER)
    if fs.exists(marker) and not overwrite:
        raise UserError(f"{run_dir}/docs is already complete; pass --overwrite to redo it")
    units = plan_units(
        list(inputs.wikipedia),
        list(inputs.books),
        list(inputs.corpus),
        int(inputs.range_mb * (1 << 20)),
    )
    check_inputs(units, options)
    if not beam_runner.is_dry_run(extra):  # a dry run changes nothing
        clear_outputs(run_dir)
        for sub in ("docs", "rejected", "report", "tmp/extract"):
            fs.makedirs(fs.join(run_dir, sub))
    print(f"extract: {len(units)} work units -> {run_dir}", file=sys.stderr)
    beam_runner.run(
        lambda p: (
            p | "Units" >> beam.Create(units) | "Extract" >> ExtractDocuments(options, run_dir)
        ),
        extra,
    )
    stage = run_report.load_json(fs.join(run_dir, "report", "extract.json"))
    run_report.update_run_report(run_dir, "extract", stage)
    # finalised units' leftovers and --expand-templates' shared templates file
    fs.delete(fs.list_files(fs.join(run_dir, "tmp", "extract", "*")))
    if units and not stage.get("docs_out"):
        # Nothing for the later stages to work on: stop here, naming why, rather than at
        # instances with "0 instances cannot fill 1 shards". No marker: a rerun redoes it.
        raise UserError(nothing_extracted(stage, len(units), run_dir))
    fs.write_bytes(marker, b"")
    return stage


def check_inputs(units: list[Unit], options: ExtractOptions) -> None:
    """What is wrong with the inputs as a whole, told before any worker starts (one line, not
    a failed pipeline): a corpus file of unknown format, a Parquet corpus without the text
    column (read from each file's footer). A file that cannot be read is not an error here:
    the workers count it as ``unreadable`` and the run goes on."""
    corpus_opts = corpus_options(options)
    for unit in units:
        if unit.source != CORPUS or corpora.corpus_format(unit.relpath)[0] != "parquet":
            continue
        try:
            stream = fs.open_read(unit.path)
        except OSError:
            continue
        with stream:
            corpus_parquet.check_schema(stream, unit.relpath, corpus_opts)


def nothing_extracted(stage: dict, n_units: int, run_dir: str) -> str:
    """The one line saying why an extraction kept no document: the most frequent reasons and
    the first cut inputs."""
    reasons = {**stage.get("skipped", {}), **stage.get("rejected", {})}
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    why = [f"{n} {reason}" for reason, n in top]
    why += [f"cut {c['path']}: {c['detail']}" for c in stage.get("cuts", [])[:3]]
    return (
        f"no document kept from {n_units} input unit(s) "
        f"({'; '.join(why) or 'the inputs hold no record'}); "
        f"counts in {run_dir}/report/extract.json"
    )


def clear_outputs(run_dir: str) -> None:
    """Remove a previous extraction's files so no stale unit survives a rerun."""
    stale = []
    for sub in ("docs", "rejected", "tmp/extract"):
        stale += fs.list_files(fs.join(run_dir, sub, "*")) + fs.stale_temps(fs.join(run_dir, sub))
    fs.delete(stale)


def summary(stage: dict, run_dir: str) -> str:
    """Human-readable counts of one extraction."""
    lines = [
        f"documents in: {stage['docs_in']}, out: {stage['docs_out']} ({run_dir}/docs)",
        f"skipped: {stage['skipped']}",
        f"rejected: {stage['rejected']} (details in {run_dir}/rejected)",
    ]
    for cut in stage.get("cuts", []):
        lines.append(f"cut input: {cut['path']}: {cut['detail']}")
    return "\n".join(lines)
