"""Beam wiring of the extraction stage. Thin: every decision lives in a pure module.

Data flow (only small keys and counts go through grouping; document text never does)::

    units -> _ExtractUnitFn -writes-> RUN/tmp/extract/<unit>.parquet (kept docs)
                 |                 RUN/rejected/<unit>.parquet   (dropped)
                 |-(text hash, doc id)-> GroupByKey -> losers (id -> winner id)
                 '-(unit key, counts)-> _FinalizeUnitFn [side input: losers]
                         -writes-> RUN/docs/<unit>.parquet, RUN/rejected/<unit>.dup.parquet
                         -counts-> merged -> RUN/report/extract.json

Units come from ``beam.Create``, which already redistributes 2+ elements (a Reshuffle), so
workers share them. With ``--no-dedup`` the extraction writes ``RUN/docs/<unit>.parquet``
itself and the grouping and finalising steps are left out.

With ``--expand-templates`` a first branch collects the Template pages of every Wikipedia
unit, so each unit expands with the whole dump's definitions (side inputs)::

    units -> _TemplatesFn -(title, (unit order, kind, value))-> CombinePerKey(first)
                 |            -> bodies {title: body}, redirects {title: target}  [AsDict]
                 '-(newest revision timestamp)-> CombineGlobally(latest)           [AsSingleton]

A title defined in two inputs takes the definition of the first unit in input order, so
the choice does not depend on the runner.

Output files are named after units and written in input order, so they are byte-identical
whatever the runner, the worker count or bundle retries.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.common import fs, run_report
from pipeline.common.file_stage import WriteJsonFn
from pipeline.common.parquet_io import RecordWriter, iter_documents, iter_rows
from pipeline.common.records import REJECTED, WIKIPEDIA, Document, Dropped
from pipeline.extract.core import (
    ExtractOptions,
    WikiContext,
    extract_unit,
    text_hash,
    unit_templates,
)
from pipeline.extract.units import Unit
from pipeline.extract.wiki import clean
from pipeline.extract.wiki.clean import Templates

UNIT_COUNTS = "unit_counts"
NEWEST = "newest"
BODY, REDIRECT = "body", "redirect"


def tmp_docs_path(run_dir: str, unit_key: str) -> str:
    return fs.join(run_dir, "tmp", "extract", f"{unit_key}.parquet")


class _ExtractUnitFn(beam.DoFn):
    """Extract one unit; emit (text hash, doc id) for dedup and the unit's counts."""

    def __init__(self, options: ExtractOptions, run_dir: str):
        self._options = options
        self._run_dir = run_dir

    def setup(self):
        # wikiextractor keeps module-level state; set all of it once per worker.

        clean.configure(expand_templates=self._options.expand_templates)

    def process(self, unit: Unit, bodies=None, redirects=None, newest=""):

        wiki = None
        if bodies is not None:
            wiki = WikiContext(Templates(bodies, redirects), newest)
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
                        yield text_hash(rec.text), rec.id
                else:
                    rej.write(rec)
                    Metrics.counter("extract", f"{rec.kind}_{rec.reason}").inc()
        Metrics.counter("extract", "docs_kept").inc(docs.count)
        yield beam.pvalue.TaggedOutput(UNIT_COUNTS, (unit.key, stats))


def unit_order(unit: Unit) -> tuple:
    """Sort key of a unit in input order (the same for a local and a ``gs://`` run)."""
    return unit.relpath, unit.start, unit.path


def template_definitions(templates, order: tuple):
    """``(title, (order, kind, value))`` for each definition in ``templates`` (a
    :class:`pipeline.extract.wiki.clean.Templates`); kind is ``BODY`` or ``REDIRECT``."""
    for title, body in templates.bodies.items():
        yield title, (order, BODY, body)
    for title, target in templates.redirects.items():
        yield title, (order, REDIRECT, target)


class _TemplatesFn(beam.DoFn):
    """A Wikipedia unit's template definitions (main output) and newest timestamp (``NEWEST``)."""

    def __init__(self, options: ExtractOptions):
        self._options = options

    def setup(self):

        clean.configure(expand_templates=True)

    def process(self, unit: Unit):
        if unit.source != WIKIPEDIA:
            return
        templates, newest = unit_templates(unit, self._options)
        yield from template_definitions(templates, unit_order(unit))
        n = len(templates.bodies) + len(templates.redirects)
        Metrics.counter("extract", "template_definitions").inc(n)
        yield beam.pvalue.TaggedOutput(NEWEST, newest)


def definitions_of(item: tuple[str, tuple], kind: str):
    """``(title, value)`` when the chosen definition of ``title`` is of ``kind``."""
    title, (_, found, value) = item
    if found == kind:
        yield title, value


def latest(stamps) -> str:
    """The newest of ISO 8601 UTC timestamps (they sort as text); ``""`` for none."""
    return max(stamps, default="")


def duplicate_losers(item: tuple[str, Iterable[str]]):
    """For one text hash, map every id but the smallest to the smallest (the winner)."""
    _, ids = item
    ids = sorted(set(ids))
    for loser in ids[1:]:
        yield loser, ids[0]


class _FinalizeUnitFn(beam.DoFn):
    """Move a unit's kept documents to RUN/docs; a unit holding duplicates is rewritten
    without them (they go to RUN/rejected). Only the ``id`` column is read to decide."""

    def __init__(self, run_dir: str):
        self._run_dir = run_dir

    def process(self, item: tuple[str, dict], losers: dict):
        key, stats = item
        stats = run_report.merge([stats])  # a private copy
        out = fs.join(self._run_dir, "docs", f"{key}.parquet")
        tmp = tmp_docs_path(self._run_dir, key)
        if not fs.exists(tmp):  # a retried bundle: an earlier attempt moved it already
            yield stats
            return
        if not any(row["id"] in losers for row in iter_rows(tmp, ["id"])):
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
        side = {}
        if self._options.expand_templates:
            found = units | "Templates" >> beam.ParDo(_TemplatesFn(self._options)).with_outputs(
                NEWEST, main="definitions"
            )
            chosen = found.definitions | "FirstDefinition" >> beam.CombinePerKey(min)
            side = {
                "bodies": beam.pvalue.AsDict(
                    chosen | "Bodies" >> beam.FlatMap(definitions_of, BODY)
                ),
                "redirects": beam.pvalue.AsDict(
                    chosen | "Redirects" >> beam.FlatMap(definitions_of, REDIRECT)
                ),
                "newest": beam.pvalue.AsSingleton(
                    found[NEWEST] | "Newest" >> beam.CombineGlobally(latest)
                ),
            }
        extracted = units | "Extract" >> beam.ParDo(
            _ExtractUnitFn(self._options, self._run_dir), **side
        ).with_outputs(UNIT_COUNTS, main="hashes")
        if self._options.dedup:
            losers = (
                extracted.hashes | "ByText" >> beam.GroupByKey() | beam.FlatMap(duplicate_losers)
            )
            counts = extracted[UNIT_COUNTS] | "Finalize" >> beam.ParDo(
                _FinalizeUnitFn(self._run_dir), beam.pvalue.AsDict(losers)
            )
        else:
            counts = extracted[UNIT_COUNTS] | "Stats" >> beam.Values()
        return (
            counts
            # run_report.merge is associative (a merge of merged reports is the same report);
            # there is always a unit, so no default is needed
            | "Merge" >> beam.CombineGlobally(run_report.merge).without_defaults()
            | "Report" >> beam.ParDo(WriteJsonFn(fs.join(self._run_dir, "report", "extract.json")))
        )
