"""Beam wiring of the extraction stage. Thin: every decision lives in a pure module.

Data flow (only small keys and counts go through grouping; document text never does)::

    units -> _ExtractUnitFn -writes-> RUN/tmp/extract/<unit>.parquet (kept docs)
                 |                 RUN/rejected/<unit>.parquet   (dropped)
                 |-(HASH: text hash, (doc id, unit key))-> GroupByKey -> duplicate_losers
                 |        -(unit key, (loser id, winner id))---------------.
                 '-(COUNTS: unit key, counts)------------------------------+-> CoGroupByKey
                         -> _FinalizeUnitFn -writes-> RUN/docs/<unit>.parquet,
                                                      RUN/rejected/<unit>.dup.parquet
                         -counts-> merged -> RUN/report/extract.json

The extraction DoFn has one output of ``(tag, value)`` pairs, split by tag
(:class:`pipeline.common.portable.SplitByTag`), and each unit meets its duplicates in a
``CoGroupByKey`` by unit key, not through a side input: every branch ends in the report,
the pipeline's one last step, so a runner that computes only the last leaf (Dask) runs all of
it, and runs the extraction once (see :mod:`pipeline.common.portable`).

Units come from ``beam.Create``, which already spreads 2+ elements over workers (a
Reshuffle on the FnApiRunner and Dataflow, one unit per partition on Dask by our default).
With ``--no-dedup`` the extraction writes ``RUN/docs/<unit>.parquet`` itself and the
grouping and finalising steps are left out. With ``--expand-templates`` the units first go
through :class:`pipeline.extract.template_scan.ShareTemplates`.

Output files are named after units and written in input order, so they are byte-identical
whatever the runner, the worker count or bundle retries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.common import fs, portable, run_report
from pipeline.common.file_stage import WriteJsonFn
from pipeline.common.parquet_io import RecordWriter, iter_documents, iter_rows
from pipeline.common.records import REJECTED, WIKIPEDIA, Document, Dropped
from pipeline.extract.core import ExtractOptions, extract_unit, text_hash
from pipeline.extract.template_scan import ShareTemplates, load_wiki_context, unit_order
from pipeline.extract.units import Unit
from pipeline.extract.wiki import clean

HASH, COUNTS = "hash", "counts"  # the tags of the extraction's (tag, value) output
STATS, LOSERS = "stats", "losers"  # the two sides of the join by unit

__all__ = ["ExtractDocuments", "duplicate_losers", "tmp_docs_path", "unit_order"]


def tmp_docs_path(run_dir: str, unit_key: str) -> str:
    return fs.join(run_dir, "tmp", "extract", f"{unit_key}.parquet")


def templates_path(run_dir: str) -> str:
    """Where this run's shared templates go: a new name per pipeline, so a worker's cached
    copy (:func:`pipeline.extract.template_scan.load_wiki_context`) is never stale."""
    return fs.join(run_dir, "tmp", "extract", f"templates-{uuid.uuid4().hex[:12]}.json")


class _ExtractUnitFn(beam.DoFn):
    """Extract one unit; emit ``(HASH, (text hash, (doc id, unit key)))`` per kept document
    (dedup only) and ``(COUNTS, (unit key, counts))`` once."""

    def __init__(self, options: ExtractOptions, run_dir: str, templates: str | None):
        self._options = options
        self._run_dir = run_dir
        self._templates = templates

    def setup(self):
        # wikiextractor keeps module-level state; set all of it once per worker.

        clean.configure(expand_templates=self._options.expand_templates)

    def process(self, unit: Unit):

        wiki = None
        if self._templates and unit.source == WIKIPEDIA:
            wiki = load_wiki_context(self._templates)
        stats = run_report.empty()
        docs_path = tmp_docs_path(self._run_dir, unit.key)
        if not self._options.dedup:  # nothing to finalise: write the final file
            docs_path = fs.join(self._run_dir, "docs", f"{unit.key}.parquet")
        rejected_path = fs.join(self._run_dir, "rejected", f"{unit.key}.parquet")
        with RecordWriter(docs_path, Document) as docs, RecordWriter(rejected_path, Dropped) as rej:
            for rec in extract_unit(unit, self._options, stats, wiki):
                if isinstance(rec, Document):
                    docs.write(rec)
                    if self._options.dedup:
                        yield HASH, (text_hash(rec.text), (rec.id, unit.key))
                else:
                    rej.write(rec)
                    Metrics.counter("extract", f"{rec.kind}_{rec.reason}").inc()
        Metrics.counter("extract", "docs_kept").inc(docs.count)
        yield COUNTS, (unit.key, stats)


def duplicate_losers(item: tuple[str, Iterable[tuple[str, str]]]):
    """For one text hash, ``(unit key, (loser id, winner id))`` for every document but the one
    with the smallest id (the winner). A document id seen twice counts once."""
    _, found = item
    ids = sorted({doc_id for doc_id, _ in found})
    winner = ids[0]
    for doc_id, unit_key in sorted(set(found)):
        if doc_id != winner:
            yield unit_key, (doc_id, winner)


class _FinalizeUnitFn(beam.DoFn):
    """Move a unit's kept documents to RUN/docs; a unit holding duplicates is rewritten
    without them (they go to RUN/rejected). Only the ``id`` column is read to decide.

    Input: ``(unit key, {STATS: [counts], LOSERS: [(loser id, winner id), ...]})``, the
    unit's side of the join by unit key.
    """

    def __init__(self, run_dir: str):
        self._run_dir = run_dir

    def process(self, item: tuple[str, dict]):
        key, joined = item
        (stats,) = joined[STATS]
        losers = dict(joined[LOSERS])
        stats = run_report.merge([stats])  # a private copy
        out = fs.join(self._run_dir, "docs", f"{key}.parquet")
        tmp = tmp_docs_path(self._run_dir, key)
        if not fs.exists(tmp):  # a retried bundle: an earlier attempt moved it already
            yield stats
            return
        if not losers or not any(row["id"] in losers for row in iter_rows(tmp, ["id"])):
            fs.move(tmp, out)  # nothing to drop: the file is already the final one
            yield stats
            return
        dup_path = fs.join(self._run_dir, "rejected", f"{key}.dup.parquet")
        dups = []
        with RecordWriter(out, Document) as docs:
            for doc in iter_documents(tmp):
                winner = losers.get(doc.id)
                if winner is None:
                    docs.write(doc)
                    continue
                dups.append(
                    Dropped(
                        doc.id,
                        doc.source,
                        doc.path,
                        doc.title,
                        REJECTED,
                        "duplicate",
                        f"same text as {winner}",
                    )
                )
                run_report.reclassify(stats, doc.source, "duplicate")
        if dups:
            with RecordWriter(dup_path, Dropped) as rej:
                for d in dups:
                    rej.write(d)
            Metrics.counter("extract", "rejected_duplicate").inc(len(dups))
        yield stats


class ExtractDocuments(beam.PTransform):
    """Units in; documents, rejections and ``RUN/report/extract.json`` written under ``run_dir``."""

    def __init__(self, options: ExtractOptions, run_dir: str):
        super().__init__()
        self._options = options
        self._run_dir = run_dir

    def expand(self, units):
        templates = None
        if self._options.expand_templates:
            templates = templates_path(self._run_dir)
            units = units | "Templates" >> ShareTemplates(self._options, templates)
        extracted = units | "Extract" >> beam.ParDo(
            _ExtractUnitFn(self._options, self._run_dir, templates)
        )
        split = extracted | "ByTag" >> portable.SplitByTag(HASH, COUNTS)
        if self._options.dedup:
            losers = (
                split[HASH]
                | "ByText" >> beam.GroupByKey()
                | "Losers" >> beam.FlatMap(duplicate_losers)
            )
            counts = (
                {STATS: split[COUNTS], LOSERS: losers}
                | "ByUnit" >> beam.CoGroupByKey()
                | "Finalize" >> beam.ParDo(_FinalizeUnitFn(self._run_dir))
            )
        else:
            counts = split[COUNTS] | "Stats" >> beam.Values()
        return (
            counts
            # run_report.merge is associative (a merge of merged reports is the same report);
            # there is always a unit, so no default is needed
            | "Merge" >> beam.CombineGlobally(run_report.merge).without_defaults()
            | "Report" >> beam.ParDo(WriteJsonFn(fs.join(self._run_dir, "report", "extract.json")))
        )
