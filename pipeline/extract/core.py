"""Extraction of one unit: raw bytes in, :class:`Document` / :class:`Dropped` records out.

Pure apart from reading the unit's bytes through :mod:`pipeline.common.fs`. The Beam transforms in
:mod:`pipeline.extract.transforms` call :func:`extract_unit` once per unit and
:func:`text_hash` to deduplicate across units.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ground.errors import describe_os_error
from pipeline.common import fs, run_report, textnorm
from pipeline.common.records import (
    BOOKS,
    CORPUS,
    REJECTED,
    WIKIPEDIA,
    Document,
    Dropped,
    doc_id,
)
from pipeline.extract import books, corpora
from pipeline.extract.units import Unit
from pipeline.extract.wiki import bz2streams
from pipeline.extract.wiki import dump as wikipedia

if TYPE_CHECKING:
    from pipeline.extract.wiki.clean import Templates


@dataclass(frozen=True)
class ExtractOptions:
    """Options of the extraction stage (one field per ``bertprep extract`` flag).

    Attributes:
        namespaces: MediaWiki namespaces kept (0 = articles).
        keep_headings: keep section and chapter headings as paragraphs.
        expand_templates: expand templates from the Template pages of all Wikipedia inputs.
        max_page_bytes: wikitext bytes above which a page is rejected ``too_large``.
        min_words: documents with fewer words are rejected ``too_short``.
        dedup: drop exact duplicates (same normalised text) across all sources.
        text_field: JSONL field (Parquet column) holding a corpus document's text.
        title_field: optional JSONL field / Parquet column holding a title.
        text_mode: plain-text corpora: ``line`` (one document per line) or ``blank``
            (documents separated by blank lines).
    """

    namespaces: tuple[int, ...] = (0,)
    keep_headings: bool = False
    expand_templates: bool = False
    max_page_bytes: int = 4_000_000
    min_words: int = 10
    dedup: bool = True
    text_field: str = "text"
    title_field: str = "title"
    text_mode: str = "blank"
    dump_date: str = ""  # YYYYMMDD date templates evaluate to; "" = from file names or revisions


@dataclass(frozen=True)
class WikiContext:
    """What every Wikipedia unit of a run shares when templates are expanded.

    ``templates`` come from the Template pages of all the run's Wikipedia inputs (one dump's
    27+ parts expand with each other's definitions); ``newest`` is the newest revision
    timestamp over those inputs (``YYYY-MM-DDTHH:MM:SSZ``), the dump date of last resort.
    """

    templates: Templates
    newest: str = ""


def text_hash(text: str) -> str:
    r"""Hash of the text normalised for exact dedup (case-folded, whitespace collapsed).

    ``" ".join(s.split())`` equals ``re.sub(r"\s+", " ", s).strip()``: both split on exactly
    ``str.isspace()`` characters, and the join is 3-4x faster on article text.
    """
    norm = " ".join(text.casefold().split())
    return hashlib.sha256(norm.encode()).hexdigest()[:32]


def apply_filters(doc: Document, options: ExtractOptions) -> Document | Dropped:
    """Reject documents shorter than ``options.min_words`` words."""
    if textnorm.word_count(doc.text) < options.min_words:
        return Dropped(
            doc.id,
            doc.source,
            doc.path,
            doc.title,
            REJECTED,
            "too_short",
            f"{textnorm.word_count(doc.text)} words",
        )
    return doc


def extract_unit(
    unit: Unit, options: ExtractOptions, stats: dict, wiki: WikiContext | None = None
) -> Iterator[Document | Dropped]:
    """Read one unit and yield its records, filters applied.

    ``stats`` (a :mod:`pipeline.common.run_report` dict) receives the counts, including notes
    such as repaired bytes and cut dumps; callers must exhaust the iterator before reading it.
    ``wiki``: the run's shared templates (``expand_templates`` only; see :func:`unit_templates`).
    Without it a Wikipedia unit expands with its own Template pages (a first pass over it).
    """
    for rec in _read_unit(unit, options, stats, wiki):
        if isinstance(rec, Document):
            rec = apply_filters(rec, options)
        run_report.count(stats, rec)
        yield rec


def _read_unit(unit, options, stats, wiki) -> Iterator[Document | Dropped]:
    if unit.source == WIKIPEDIA:
        records = _read_wikipedia(unit, options, stats, wiki)
    elif unit.source == BOOKS:
        records = _read_book(unit, options, stats)
    elif unit.source == CORPUS:
        records = _read_corpus(unit, options, stats)
    else:
        raise ValueError(f"unknown source {unit.source!r}")
    n = 0
    try:
        for rec in records:
            n += 1
            yield rec
    except OSError as exc:
        # The input cannot be opened or read (permission denied, deleted since planning, an
        # I/O error): one counted rejection for the rest of the file, the run goes on. Only
        # reading happens in here (the caller writes), so this never hides a full output disk.
        yield unreadable(unit, n, exc)


def unreadable(unit: Unit, records_before: int, exc: OSError) -> Dropped:
    """The rejection standing for what could not be read of ``unit`` after ``records_before``
    records (its id is keyed on that count, so it is unique within the file)."""
    where = "" if records_before == 0 else f" after {records_before} records"
    return Dropped(
        doc_id(unit.source, unit.relpath, f"unreadable:{records_before}"),
        unit.source,
        unit.relpath,
        "",
        REJECTED,
        "unreadable",
        f"cannot read the file{where}: {describe_os_error(exc)}",
    )


def unit_templates(unit: Unit, options: ExtractOptions) -> tuple[Templates, str]:
    """Template definitions in one Wikipedia unit and its newest revision timestamp."""

    with fs.open_read(unit.path) as raw:
        return wikipedia.template_pass(_wiki_stream(unit, raw), options.max_page_bytes)


def parse_dump_date(text: str) -> datetime:
    """``YYYYMMDD`` (``--dump-date``) as 00:00 UTC; ``ValueError`` for anything else."""
    if len(text) != 8:
        raise ValueError(text)
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=timezone.utc)


def _read_wikipedia(unit: Unit, options: ExtractOptions, stats: dict, wiki: WikiContext | None):

    wiki_opts = wikipedia.WikiOptions(
        namespaces=frozenset(options.namespaces),
        keep_headings=options.keep_headings,
        expand_templates=options.expand_templates,
        max_page_bytes=options.max_page_bytes,
        dump_date=parse_dump_date(options.dump_date) if options.dump_date else None,
        newest=wiki.newest if wiki is not None else "",
    )
    templates = wiki.templates if wiki is not None else None
    with fs.open_read(unit.path) as raw:
        stream = _wiki_stream(unit, raw)
        result = wikipedia.extract_wikipedia(stream, unit.relpath, wiki_opts, templates)
        yield from result
        removed = result.summary.removed_control_bytes if result.summary else 0
        if removed:
            run_report.note(stats, "xml_control_bytes_removed", removed)
        cut = getattr(result, "cut", None)
        if cut:
            detail = f"{cut.reason} after {cut.pages_before} complete pages: {cut.detail}"
            stats["cuts"].append({"path": unit.relpath, "detail": detail})


def _wiki_stream(unit: Unit, raw):
    """The unit's XML bytes: a multistream range, a whole .bz2 (any number of streams), or XML."""
    if unit.start >= 0:
        return bz2streams.open_range(raw, unit.start, unit.end, unit.header)
    if unit.path.endswith(".bz2"):
        return bz2streams.open_whole(raw)  # keeps every complete page before a cut
    return raw


def _read_book(unit: Unit, options: ExtractOptions, stats: dict):

    book_options = books.BookOptions(keep_headings=options.keep_headings)
    with fs.open_read(unit.path) as f:
        # One byte past the cap tells a too-large file without holding the whole of it.
        raw = f.read(book_options.max_bytes + 1)
    rec, book_stats = books.book_document(raw, unit.relpath, book_options)
    for key, n in book_stats.items():
        if n:
            run_report.note(stats, key, int(n))
    yield rec


def _read_corpus(unit: Unit, options: ExtractOptions, stats: dict):

    with fs.open_read(unit.path) as f:
        yield from corpora.iter_corpus(f, unit.relpath, corpus_options(options))


def corpus_options(options: ExtractOptions) -> corpora.CorpusOptions:
    """The corpus readers' options of an extraction."""
    return corpora.CorpusOptions(
        text_field=options.text_field, title_field=options.title_field, text_mode=options.text_mode
    )


__all__ = [
    "ExtractOptions",
    "WikiContext",
    "apply_filters",
    "corpus_options",
    "parse_dump_date",
    "extract_unit",
    "text_hash",
    "unit_templates",
    "CORPUS",
]
