"""Beam wiring shared by the stages that map one input Parquet file to one output file.

``segment`` and the per-unit parts of later stages read ``RUN/<in>/*.parquet`` and write
``RUN/<out>/<same name>``: output names follow input names and rows keep their order, so
outputs are byte-identical whatever the runner or worker count. Each file's DoFn returns a
flat dict of integer counts; they are summed into ``RUN/report/<stage>.json``.
"""

from __future__ import annotations

import apache_beam as beam

from ground.errors import UserError
from pipeline.common import fs, run_report


def sum_counts(counts: list[dict]) -> dict:
    """Sum flat ``{key: int}`` dicts; keys sorted."""
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


class WriteJsonFn(beam.DoFn):
    def __init__(self, path: str):
        self._path = path

    def process(self, obj: dict):
        fs.write_bytes(self._path, run_report.dumps(obj))
        yield self._path


class PerFile(beam.PTransform):
    """Apply ``file_fn`` (a DoFn: path -> counts dict) to every path; write the summed counts.

    ``paths`` must not be empty (:func:`input_files` refuses that): the sum has no default.
    """

    def __init__(self, file_fn: beam.DoFn, report_path: str):
        super().__init__()
        self._fn = file_fn
        self._report_path = report_path

    def expand(self, paths):
        # paths come from beam.Create, which already spreads 2+ elements over workers
        return (
            paths
            | "PerFile" >> beam.ParDo(self._fn)
            | "Sum" >> beam.CombineGlobally(sum_counts).without_defaults()
            | "Report" >> beam.ParDo(WriteJsonFn(self._report_path))
        )


# Which stage writes each run subdirectory: named in the errors below.
MADE_BY = {"docs": "bertprep extract", "sentences": "bertprep segment"}


def input_files(run_dir: str, sub: str, what: str) -> list[str]:
    """Sorted ``RUN/<sub>/*.parquet`` of a finished stage; a clear error naming the stage to
    run first when there are none, or when the stage that writes them did not finish (no
    ``_SUCCESS``: an interrupted or failed run's files are never read as if complete)."""

    directory = fs.join(run_dir, sub)
    made_by = MADE_BY.get(sub, "the stage that makes them")
    files = fs.list_files(fs.join(directory, "*.parquet"))
    if not files:
        raise UserError(f"no {what} in {directory}: run {made_by} first")
    if not fs.exists(fs.join(directory, run_report.DONE_MARKER)):
        raise UserError(
            f"{directory} is incomplete (no {run_report.DONE_MARKER}): {made_by} did not "
            "finish; run it again"
        )
    return files


def basename(path: str) -> str:
    """Last path component on any filesystem."""
    return path.rstrip("/").rsplit("/", 1)[-1]
