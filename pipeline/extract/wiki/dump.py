"""One MediaWiki dump file -> :class:`Document` and :class:`Dropped` records (no Beam here).

:func:`extract_wikipedia` reads the XML with
:class:`pipeline.extract.wiki.xml_reader.WikiXmlReader`, cleans each kept page with
:class:`pipeline.extract.wiki.clean.WikiCleaner` and yields, in file order, exactly
one record per complete page; the returned iterator's ``summary`` (a :class:`WikiSummary`)
is set once it is exhausted. Per page, the first matching rule wins:

==================  ========  =============================================================
redirect            skipped   ``<redirect/>`` element, or text starting ``#REDIRECT [[...]]``
namespace           skipped   ``ns`` not in ``WikiOptions.namespaces`` (default ``{0}``)
too_large           rejected  wikitext above ``max_page_bytes`` (never cleaned, never held)
too_complex         rejected  unclosed markup would take wikiextractor over ``time_limit_s``
timeout             rejected  template expansion ran past ``time_limit_s``
clean_error         rejected  wikiextractor raised on this page (detail: the exception)
empty               rejected  nothing left after cleaning
==================  ========  =============================================================

The too-short filter is not applied here (a shared filter does it for every source).

Ids: ``records.doc_id(WIKIPEDIA, relpath, page_id)``. Real dumps list pages in increasing id
order; a page whose id is not above every id before it in the file (hand-edited exports repeat
ids) is keyed ``"{page_id}@{ordinal}"`` instead (ordinal = 0-based position among the file's
pages), so ids stay unique and deterministic without remembering every id seen.

Dump date (template expansion only): ``WikiOptions.dump_date``, else the ``YYYYMMDD`` in the
file name, else the newest revision timestamp: of this file when its own first pass collects
the templates, else ``WikiOptions.newest`` (over the whole run). With none of them date
templates render ``""``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from wikiextractor.extract import redirectRE

from pipeline.common.records import REJECTED, SKIPPED, WIKIPEDIA, Document, Dropped, doc_id
from pipeline.extract.wiki import xml_reader
from pipeline.extract.wiki.clean import (
    DEFAULT_MAX_PAGE_BYTES,
    DEFAULT_TIME_LIMIT_S,
    Templates,
    WikiCleaner,
    collect_templates,
)


@dataclass(frozen=True)
class WikiOptions:
    """How Wikipedia pages become documents.

    Args:
        namespaces: namespace keys to keep (0 = articles).
        keep_headings: keep section headings as paragraphs.
        expand_templates: expand templates from the dump's own Template pages (slower); by
            default every ``{{...}}`` is dropped.
        max_page_bytes: UTF-8 bytes of wikitext above which a page is rejected ``too_large``.
        time_limit_s: seconds of cleaning allowed per page (see :class:`WikiCleaner`).
        dump_date: the date date templates evaluate to; ``None``: see the module doc.
        newest: the newest revision timestamp over every input of the run (``templates``
            given): the date of last resort, after ``dump_date`` and the file name.
    """

    namespaces: frozenset[int] = frozenset({0})
    keep_headings: bool = False
    expand_templates: bool = False
    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    dump_date: datetime | None = None
    newest: str = ""


@dataclass(frozen=True)
class WikiSummary:
    """What happened to one file (``WikiExtraction.summary`` once the records are consumed).

    ``pages == documents + sum(skipped.values()) + sum(rejected.values())``. ``cut`` is
    ``None`` when the XML ended with ``</mediawiki>``; otherwise it says where and why the
    stream stopped (every complete page before it was processed).
    """

    path: str
    pages: int
    documents: int
    skipped: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    cut: xml_reader.Cut | None = None
    siteinfo: xml_reader.SiteInfo | None = None
    dump_date: str = ""  # ISO 8601, only when templates were expanded
    removed_control_bytes: int = 0  # forbidden XML control bytes removed (see xml_reader)

    @property
    def complete(self) -> bool:
        return self.cut is None


def template_pass(fileobj: BinaryIO, max_page_bytes: int) -> tuple[Templates, str]:
    """First pass over a dump: its template definitions and newest revision timestamp."""
    reader = xml_reader.WikiXmlReader(fileobj, max_page_bytes)
    templates = collect_templates(reader)
    return templates, reader.max_timestamp


def extract_wikipedia(
    fileobj: BinaryIO,
    relpath: str,
    options: WikiOptions = WikiOptions(),
    templates: Templates | None = None,
) -> WikiExtraction:
    """Documents and dropped pages of one dump file, in file order (see :class:`WikiExtraction`).

    Args:
        fileobj: the decompressed XML as a binary stream.
        relpath: the file's path relative to its input root (``/``-separated), used in ids.
        options: see :class:`WikiOptions`.
        templates: template definitions for ``expand_templates`` (e.g. collected from every
            part of a multi-file dump). When ``None`` in that mode, they are read from this
            file in a first pass, which needs a seekable ``fileobj``.
    """
    return WikiExtraction(fileobj, relpath, options, templates)


class WikiExtraction:
    """Iterator of :class:`Document` | :class:`Dropped`, one per complete page.

    Once exhausted, :attr:`summary` holds the file's :class:`WikiSummary` and :attr:`cut` its
    cut (``None`` when the XML ended properly). Nothing is read before the first ``next()``.
    """

    def __init__(self, fileobj, relpath: str, options: WikiOptions, templates: Templates | None):
        self.summary: WikiSummary | None = None
        self._records = self._run(fileobj, relpath, options, templates)

    def __iter__(self) -> Iterator[Document | Dropped]:
        return self

    def __next__(self) -> Document | Dropped:
        return next(self._records)

    @property
    def cut(self) -> xml_reader.Cut | None:
        return self.summary.cut if self.summary else None

    def _run(self, fileobj, relpath, options, templates) -> Iterator[Document | Dropped]:
        dump_date = None
        if options.expand_templates:
            dump_date = options.dump_date or xml_reader.dump_date_from_name(relpath)
            if templates is None:  # this file's own definitions, from a first pass
                if not fileobj.seekable():
                    raise ValueError("expand_templates without templates needs a seekable file")
                templates, newest = template_pass(fileobj, options.max_page_bytes)
                fileobj.seek(0)
                dump_date = dump_date or xml_reader.parse_timestamp(newest)
            dump_date = dump_date or xml_reader.parse_timestamp(options.newest)
        reader = xml_reader.WikiXmlReader(fileobj, options.max_page_bytes)
        cleaner: WikiCleaner | None = None
        skipped: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        documents = 0
        last_id = -1
        for ordinal, page in enumerate(reader):
            if cleaner is None:  # <siteinfo>, when there is one, precedes the first page
                cleaner = WikiCleaner(
                    reader.siteinfo,
                    keep_headings=options.keep_headings,
                    expand_templates=options.expand_templates,
                    templates=templates,
                    dump_date=dump_date,
                    max_page_bytes=options.max_page_bytes,
                    time_limit_s=options.time_limit_s,
                )
            key = page.page_id if page.page_id > last_id else f"{page.page_id}@{ordinal}"
            last_id = max(last_id, page.page_id)
            did = doc_id(WIKIPEDIA, relpath, key)
            kind, reason, detail = SKIPPED, "", ""
            if page.redirect or redirectRE.match(page.text[:1024].lstrip()):
                reason, detail = "redirect", page.redirect_target
            elif page.ns not in options.namespaces:
                reason, detail = "namespace", f"ns {page.ns}"
            elif page.too_large:
                kind, reason, detail = REJECTED, "too_large", f"{page.text_bytes} bytes"
            else:
                result = cleaner.clean(page.text, page.title, page.page_id)
                kind, reason, detail = REJECTED, result.reason, result.detail
                if not reason and not result.text:
                    reason = "empty"
                if not reason:
                    documents += 1
                    yield Document(did, WIKIPEDIA, relpath, page.title, result.text, page.page_id)
                    continue
            (skipped if kind == SKIPPED else rejected)[reason] += 1
            yield Dropped(did, WIKIPEDIA, relpath, page.title, kind, reason, detail)
        self.summary = WikiSummary(
            path=relpath,
            pages=reader.pages,
            documents=documents,
            skipped=dict(sorted(skipped.items())),
            rejected=dict(sorted(rejected.items())),
            cut=reader.cut,
            siteinfo=reader.siteinfo,
            dump_date=dump_date.isoformat() if dump_date else "",
            removed_control_bytes=reader.removed_control_bytes,
        )
