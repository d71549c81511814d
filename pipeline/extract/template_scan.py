"""``--expand-templates``: the Template pages of every Wikipedia unit, shared by all units.

Each unit expands with the whole run's definitions (one dump's 27+ parts use each other's
templates), so a first pass collects them before any unit is extracted::

    units -> _TemplatesFn -(DEFINITION: title, (unit order, kind, value))-> CombinePerKey(min)
                 |-(NEWEST: newest revision timestamp)----------------------.
                 '-(UNIT: the unit itself)------------------------------------+-> Collect
        -> _WriteTemplatesFn -writes-> RUN/tmp/extract/templates-<token>.json
                             -yields-> every unit (so extraction starts after the file exists)
        -> Spread -> extraction, which reads the file (:func:`load_wiki_context`)

A title defined in two inputs takes the definition of the first unit in input order, so the
choice does not depend on the runner. The definitions travel to the extraction through a
file, not a side input: a side input is recomputed by every Dask partition that reads it,
and the file is read once per worker process (:func:`load_wiki_context` keeps the last one).
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.common import fs, portable
from pipeline.common.records import WIKIPEDIA
from pipeline.extract.core import ExtractOptions, WikiContext, unit_templates
from pipeline.extract.units import Unit
from pipeline.extract.wiki import clean
from pipeline.extract.wiki.clean import Templates

DEFINITION, NEWEST, UNIT = "definition", "newest", "unit"
BODY, REDIRECT = "body", "redirect"


def unit_order(unit: Unit) -> tuple:
    """Sort key of a unit in input order (the same for a local and a ``gs://`` run)."""
    return unit.relpath, unit.start, unit.path


def template_definitions(templates: Templates, order: tuple):
    """``(title, (order, kind, value))`` for each definition in ``templates``; kind is ``BODY``
    or ``REDIRECT``."""
    for title, body in templates.bodies.items():
        yield title, (order, BODY, body)
    for title, target in templates.redirects.items():
        yield title, (order, REDIRECT, target)


def latest(stamps) -> str:
    """The newest of ISO 8601 UTC timestamps (they sort as text); ``""`` for none."""
    return max(stamps, default="")


def shared_templates(items: list) -> tuple[dict, list[Unit]]:
    """The run's templates document and its units, from everything :class:`ShareTemplates`
    collected: ``(DEFINITION, (title, (order, kind, value)))`` with one chosen definition per
    title, ``(NEWEST, timestamp)`` per Wikipedia unit and ``(UNIT, unit)`` per unit.

    The document is ``{"bodies": {title: body}, "redirects": {title: target}, "newest": ts}``.
    """
    bodies, redirects, stamps, units = {}, {}, [], []
    for tag, value in items:
        if tag == DEFINITION:
            title, (_, kind, text) = value
            (bodies if kind == BODY else redirects)[title] = text
        elif tag == NEWEST:
            stamps.append(value)
        else:
            units.append(value)
    doc = {"bodies": bodies, "redirects": redirects, "newest": latest(stamps)}
    return doc, sorted(units, key=unit_order)


def templates_json(doc: dict) -> bytes:
    """The templates document as stable JSON bytes."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()


_LOADED: dict[str, WikiContext] = {}


def load_wiki_context(path: str) -> WikiContext:
    """The :class:`WikiContext` in the templates file ``path``, read once per process.

    Only the last file read is kept: each run writes a new name (:class:`ShareTemplates`), so
    a long-lived worker (a Dask cluster serves many runs) never sees a stale one.
    """
    if path not in _LOADED:
        with fs.open_read(path) as f:
            doc = json.loads(f.read().decode("utf-8"))
        _LOADED.clear()
        _LOADED[path] = WikiContext(Templates(doc["bodies"], doc["redirects"]), doc["newest"])
    return _LOADED[path]


def _tag_definition(item):
    return DEFINITION, item


def _not_definition(item) -> bool:
    return item[0] != DEFINITION


class _TemplatesFn(beam.DoFn):
    """A unit's template definitions and newest timestamp (Wikipedia units), and the unit."""

    def __init__(self, options: ExtractOptions):
        self._options = options

    def setup(self):
        clean.configure(expand_templates=True)

    def process(self, unit: Unit):
        yield UNIT, unit
        if unit.source != WIKIPEDIA:
            return
        templates, newest = unit_templates(unit, self._options)
        for definition in template_definitions(templates, unit_order(unit)):
            yield DEFINITION, definition
        n = len(templates.bodies) + len(templates.redirects)
        Metrics.counter("extract", "template_definitions").inc(n)
        yield NEWEST, newest


class _WriteTemplatesFn(beam.DoFn):
    """Write the collected templates to ``path``; then emit every unit, in input order."""

    def __init__(self, path: str):
        self._path = path

    def process(self, items: list):
        doc, units = shared_templates(items)
        fs.write_bytes(self._path, templates_json(doc))
        yield from units


class ShareTemplates(beam.PTransform):
    """Units in; the same units out, once the run's templates are written to ``path``."""

    def __init__(self, options: ExtractOptions, path: str):
        super().__init__()
        self._options = options
        self._path = path

    def expand(self, units):
        found = units | "Scan" >> beam.ParDo(_TemplatesFn(self._options))
        chosen = (
            found
            | "Definitions" >> beam.FlatMap(portable.select, DEFINITION)
            | "FirstDefinition" >> beam.CombinePerKey(min)
            | "Tag" >> beam.Map(_tag_definition)
        )
        others = found | "NewestAndUnits" >> beam.Filter(_not_definition)
        return (
            (chosen, others)
            | "Together" >> beam.Flatten()
            | "Collect" >> portable.Collect()
            | "Write" >> beam.ParDo(_WriteTemplatesFn(self._path))
            | "Spread" >> portable.Spread(unit_key)
        )


def unit_key(unit: Unit) -> str:
    """A unit's output name: distinct per unit, so :class:`portable.Spread` spreads them."""
    return unit.key
