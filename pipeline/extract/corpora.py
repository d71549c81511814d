"""Users' own corpora: JSON Lines, Parquet, plain text and WikiExtractor output -> Documents.

:func:`iter_corpus` reads one file and yields one :class:`~pipeline.common.records.Document` or
:class:`~pipeline.common.records.Dropped` per record, so ``records in == docs + dropped`` for every
file. The format comes from the extension of ``relpath``:

- ``.jsonl``, ``.ndjson``, ``.json`` (plus ``.gz``, ``.zst`` or ``.bz2``): one JSON object per
  line, text in ``text_field``;
- ``.parquet``: one row per record, text in column ``text_field``;
- ``.txt``, ``.text`` (plus ``.gz``, ``.zst`` or ``.bz2``): mode ``line``, one document per line;
  mode ``blank``, documents separated by blank lines, one line per paragraph (the BERT
  pretraining text format);
- no extension (plus ``.bz2``...), as WikiExtractor names its files (``AA/wiki_00``,
  ``wiki_00.bz2`` with ``--compress``): format ``sniff``, decided by the first line of the file
  (:mod:`pipeline.extract.corpus_wikiextractor`); a ``.txt`` file that opens with a
  ``<doc ...>`` line is WikiExtractor output too.

Record keys (the id rule in :func:`pipeline.common.records.doc_id`): the 0-based line number for
JSON Lines and ``line`` text, the line number of the first line for ``blank`` text, the 0-based
row for Parquet, the ``id`` attribute for WikiExtractor output. A broken record is a counted
``bad_record``, never a crash; a file that cannot be decompressed or parsed past some point
yields one ``bad_file`` for the rest. Configuration mistakes (unknown extension, missing Parquet
column) raise :class:`~ground.errors.UserError`.

Memory is bounded: text is read in chunks, a record longer than ``max_record_bytes`` is
skipped as ``too_large`` without being held, and Parquet is read in record batches.

This module holds the options, the format rule, :class:`RecordMaker` (ids, titles, the text
model) and the dispatch; the readers are :mod:`pipeline.extract.corpus_lines` (JSON Lines and
text, with decompression, and the dispatch to WikiExtractor's reader) and
:mod:`pipeline.extract.corpus_parquet`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import BinaryIO

from ground.errors import UserError
from pipeline.common import textnorm
from pipeline.common.records import CORPUS, REJECTED, Document, Dropped, doc_id
from pipeline.extract.corpus_lines import read_line_records
from pipeline.extract.corpus_parquet import read_parquet

JSONL_EXTS = (".jsonl", ".ndjson", ".json")
TEXT_EXTS = (".txt", ".text")
PARQUET_EXTS = (".parquet",)
COMPRESSED_EXTS = (".gz", ".zst", ".bz2")
TEXT_MODES = ("line", "blank")


@dataclass(frozen=True)
class CorpusOptions:
    """How to read users' corpora.

    ``text_field``: JSON field or Parquet column holding the text (required). ``title_field``,
    ``id_field``: optional (a record or file without them has no title); the title is
    ``title_field``, else ``id_field`` (the user's own id, kept for humans: the document id
    always follows the id rule), else "".
    ``text_mode``: ``line`` or ``blank`` for plain-text files. ``unwrap``: the text is hard
    wrapped, paragraphs are separated by blank lines (else each line is a paragraph).
    ``drop_headings``: drop heading-like short lines from multi-paragraph records (off: a
    user's corpus is already curated; short lines such as SST-2 sentences are real text).
    ``max_record_bytes``: longer records are rejected as ``too_large``. ``batch_rows``: Parquet
    rows per record batch.
    """

    text_field: str = "text"
    id_field: str | None = None
    title_field: str | None = None
    text_mode: str = "line"
    unwrap: bool = False
    drop_headings: bool = False
    max_record_bytes: int = 16 << 20
    batch_rows: int = 1024

    def __post_init__(self) -> None:
        if self.text_mode not in TEXT_MODES:
            raise UserError(f"text mode {self.text_mode!r}: expected one of {TEXT_MODES}")
        if not self.text_field:
            raise UserError("the corpus text field name is empty")
        if self.max_record_bytes < 1 or self.batch_rows < 1:
            raise UserError("max_record_bytes and batch_rows must be positive")


def corpus_format(relpath: str) -> tuple[str, str]:
    """``(format, compression)`` from a file name: format ``jsonl``/``parquet``/``text``, or
    ``sniff`` for a name without extension (WikiExtractor's ``wiki_00``); compression
    ``""``/``.gz``/``.zst``/``.bz2``. Raises :class:`UserError` for other extensions."""
    name = relpath.rsplit("/", 1)[-1].lower()
    compression = next((c for c in COMPRESSED_EXTS if name.endswith(c)), "")
    stem = name[: len(name) - len(compression)]
    for fmt, exts in (("jsonl", JSONL_EXTS), ("text", TEXT_EXTS), ("parquet", PARQUET_EXTS)):
        if stem.endswith(exts) and not (fmt == "parquet" and compression):
            return fmt, compression
    if stem and "." not in stem:
        return "sniff", compression
    raise UserError(
        f"corpus file {relpath!r}: unknown format; use .jsonl/.ndjson/.json or .txt/.text "
        "(optionally .gz, .zst or .bz2) or .parquet, or WikiExtractor output (files named "
        "without extension, wiki_00 or wiki_00.bz2)"
    )


def clean_text(text: str, options: CorpusOptions) -> str:
    """A record's text -> the text model: NFC, single spaces, one paragraph per line."""
    paras = textnorm.unwrap(text) if options.unwrap else text.splitlines()
    multi = sum(1 for p in paras if p.strip()) > 1
    return textnorm.join_paragraphs(paras, keep_headings=not (options.drop_headings and multi))


class RecordMaker:
    """Builds the records of one file (ids, paths, titles); the format readers call it."""

    def __init__(self, relpath: str, options: CorpusOptions) -> None:
        self.relpath, self.options = relpath, options

    def drop(self, key: int | str, reason: str, detail: str, title: str = "") -> Dropped:
        ident = doc_id(CORPUS, self.relpath, key)
        return Dropped(ident, CORPUS, self.relpath, title, REJECTED, reason, detail)

    def doc(
        self, key: int | str, text: str, title: str = "", page_id: int = -1
    ) -> Document | Dropped:
        """A document, or ``empty`` when nothing is left of ``text``; ``page_id``: the
        MediaWiki page id when the input gives one (WikiExtractor)."""
        clean = clean_text(text, self.options)
        if not clean:
            return self.drop(key, "empty", "no text after normalisation", title)
        ident = doc_id(CORPUS, self.relpath, key)
        return Document(ident, CORPUS, self.relpath, title, clean, page_id)

    def title(self, record: dict) -> str:
        for field in (self.options.title_field, self.options.id_field):
            if field and record.get(field) is not None:
                return textnorm.normalize(str(record[field]))
        return ""


def iter_corpus(
    source: str | os.PathLike | BinaryIO, relpath: str, options: CorpusOptions = CorpusOptions()
) -> Iterator[Document | Dropped]:
    """Yield one :class:`Document` or :class:`Dropped` per record of one corpus file.

    Args:
        source: a local path, or a binary file object opened *without* decompression (e.g.
            ``FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)``);
            Parquet needs a seekable one, or it is copied to a temporary file first.
        relpath: the file's ``/``-separated path relative to its input root: picks the format
            and keys the ids.
        options: :class:`CorpusOptions`.
    """
    fmt, compression = corpus_format(relpath)
    make = RecordMaker(relpath, options)
    with ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            source = stack.enter_context(open(source, "rb"))
        if fmt == "parquet":
            yield from read_parquet(source, make, stack)
        else:
            yield from read_line_records(source, fmt, compression, make)
