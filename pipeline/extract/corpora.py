"""Users' own corpora: JSON Lines, Parquet and plain text -> Documents.

:func:`iter_corpus` reads one file and yields one :class:`~pipeline.common.records.Document` or
:class:`~pipeline.common.records.Dropped` per record, so ``records in == docs + dropped`` for every
file. The format comes from the extension of ``relpath``:

- ``.jsonl``, ``.ndjson``, ``.json`` (plus ``.gz`` or ``.zst``): one JSON object per line,
  text in ``text_field``;
- ``.parquet``: one row per record, text in column ``text_field``;
- ``.txt``, ``.text`` (plus ``.gz`` or ``.zst``): mode ``line``, one document per line; mode
  ``blank``, documents separated by blank lines, one line per paragraph (the BERT pretraining
  text format).

Record keys (the id rule in :func:`pipeline.common.records.doc_id`): the 0-based line number for
JSON Lines and ``line`` text, the line number of the first line for ``blank`` text, the 0-based
row for Parquet. A broken record is a counted ``bad_record``, never a crash; a file that
cannot be decompressed or parsed past some point yields one ``bad_file`` for the rest.
Configuration mistakes (unknown extension, missing Parquet column) raise
:class:`~ground.errors.UserError`.

Memory is bounded: text is read in chunks, a record longer than ``max_record_bytes`` is
skipped as ``too_large`` without being held, and Parquet is read in record batches.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import BinaryIO

from ground.errors import UserError
from pipeline.common import textnorm
from pipeline.common.records import CORPUS, REJECTED, Document, Dropped, doc_id

JSONL_EXTS = (".jsonl", ".ndjson", ".json")
TEXT_EXTS = (".txt", ".text")
PARQUET_EXTS = (".parquet",)
COMPRESSED_EXTS = (".gz", ".zst")
TEXT_MODES = ("line", "blank")
READ_CHUNK = 1 << 20  # bytes per read, and at most per decompressed piece (.gz)
# zstd has no output bound per call: feeding 64 KiB keeps pieces small for normal data (a
# deliberate decompression bomb can still expand one feed a lot).
ZSTD_FEED = 64 << 10
_BOM = b"\xef\xbb\xbf"


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
    """``(format, compression)`` from a file name: format ``jsonl``/``parquet``/``text``,
    compression ``""``/``.gz``/``.zst``. Raises :class:`UserError` for other extensions."""
    name = relpath.rsplit("/", 1)[-1].lower()
    compression = next((c for c in COMPRESSED_EXTS if name.endswith(c)), "")
    stem = name[: len(name) - len(compression)]
    for fmt, exts in (("jsonl", JSONL_EXTS), ("text", TEXT_EXTS), ("parquet", PARQUET_EXTS)):
        if stem.endswith(exts) and not (fmt == "parquet" and compression):
            return fmt, compression
    raise UserError(
        f"corpus file {relpath!r}: unknown format; use .jsonl/.ndjson/.json or .txt/.text "
        "(optionally .gz or .zst) or .parquet"
    )


def clean_text(text: str, options: CorpusOptions) -> str:
    """A record's text -> the text model: NFC, single spaces, one paragraph per line."""
    paras = textnorm.unwrap(text) if options.unwrap else text.splitlines()
    multi = sum(1 for p in paras if p.strip()) > 1
    return textnorm.join_paragraphs(paras, keep_headings=not (options.drop_headings and multi))


def _chunks(stream: BinaryIO, compression: str) -> Iterator[bytes]:
    """Decompressed bytes of ``stream`` in pieces of at most about :data:`READ_CHUNK`.

    Decompression is done here, not by ``gzip``/``zstandard`` stream readers, so that a file
    cut short yields every complete byte before the error (``EOFError``), and a truncated
    ``.zst`` is detected at all (zstandard's stream reader ends silently).
    """
    if not compression:
        while chunk := stream.read(READ_CHUNK):
            yield chunk
        return
    if compression == ".gz":
        new = functools.partial(zlib.decompressobj, 16 + zlib.MAX_WBITS)  # gzip framing
    else:
        import zstandard  # the [pipeline] extra; imported here so other formats do not need it

        new = zstandard.ZstdDecompressor().decompressobj
    dec, data, fresh = new(), b"", True
    while True:
        if not data:
            data = stream.read(ZSTD_FEED if compression == ".zst" else READ_CHUNK)
            if not data:
                break
        fresh = False
        if compression == ".gz":  # bounded output; the rest of the input waits in the tail
            out, data = dec.decompress(data, READ_CHUNK), dec.unconsumed_tail
        else:
            out, data = dec.decompress(data), b""
        if out:
            yield out
        if dec.eof:  # end of one gzip member / zstd frame; another may follow
            data, dec, fresh = dec.unused_data + data, new(), True
    if not fresh:
        if compression == ".gz" and (tail := dec.flush()):
            yield tail
        if not dec.eof:
            raise EOFError(f"{compression} data ends in the middle of a compressed stream")


def _stream_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "this compressed file is broken" (not transient I/O errors)."""
    errors: list[type[BaseException]] = [EOFError, zlib.error]
    try:
        import zstandard  # optional: only .zst inputs need it

        errors.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover - zstandard is part of the [pipeline] extra
        pass
    return tuple(errors)


def _lines(chunks: Iterator[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` from 0, line end (LF or CRLF) removed; ``None`` for a line over
    ``max_bytes``, which is skipped without being held in memory."""
    number, pending, size, too_long = 0, [], 0, False
    for chunk in chunks:
        start = 0
        while (nl := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start:nl]
            if too_long or size + len(piece) > max_bytes:
                yield number, None
            else:
                yield number, (b"".join(pending) + piece).rstrip(b"\r")
            number, pending, size, too_long, start = number + 1, [], 0, False, nl + 1
        rest = chunk[start:]
        if not too_long and size + len(rest) > max_bytes:
            pending, too_long = [], True
        elif not too_long:
            pending.append(rest)
            size += len(rest)
    if too_long:
        yield number, None
    elif pending and any(pending):
        yield number, b"".join(pending).rstrip(b"\r")


class _Maker:
    """Builds the records of one file (ids, paths, titles)."""

    def __init__(self, relpath: str, options: CorpusOptions) -> None:
        self.relpath, self.options = relpath, options

    def drop(self, key: int | str, reason: str, detail: str, title: str = "") -> Dropped:
        ident = doc_id(CORPUS, self.relpath, key)
        return Dropped(ident, CORPUS, self.relpath, title, REJECTED, reason, detail)

    def doc(self, key: int, text: str, title: str = "") -> Document | Dropped:
        clean = clean_text(text, self.options)
        if not clean:
            return self.drop(key, "empty", "no text after normalisation", title)
        return Document(doc_id(CORPUS, self.relpath, key), CORPUS, self.relpath, title, clean)

    def title(self, record: dict) -> str:
        for field in (self.options.title_field, self.options.id_field):
            if field and record.get(field) is not None:
                return textnorm.normalize(str(record[field]))
        return ""


def _jsonl(chunks: Iterator[bytes], make: _Maker) -> Iterator[Document | Dropped]:
    field, limit = make.options.text_field, make.options.max_record_bytes
    first = True
    for number, line in _lines(chunks, limit):
        if line is None:
            yield make.drop(number, "too_large", f"line over {limit} bytes")
            continue
        if first and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.strip():
            continue  # a blank line is not a record
        if first and line.lstrip().startswith(b"["):
            raise UserError(
                f"corpus file {make.relpath!r} is a JSON array, not JSON Lines: "
                "write one JSON object per line"
            )
        first = False
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield make.drop(number, "bad_record", f"line {number}: not UTF-8 ({exc.reason})")
            continue
        except (ValueError, RecursionError) as exc:
            yield make.drop(number, "bad_record", f"line {number}: not JSON ({exc})")
            continue
        if not isinstance(record, dict):
            yield make.drop(number, "bad_record", f"line {number}: not a JSON object")
            continue
        title = make.title(record)
        text = record.get(field)
        if not isinstance(text, str):
            what = "missing" if text is None else f"a {type(text).__name__}, not a string"
            yield make.drop(number, "bad_record", f"line {number}: field {field!r} {what}", title)
            continue
        yield make.doc(number, text, title)


def _block_record(
    start: int, lines: list[bytes], oversize: bool, make: _Maker
) -> Document | Dropped | None:
    """One plain-text record (a line, or a blank-line-separated block) -> a record."""
    if oversize:
        return make.drop(start, "too_large", f"record over {make.options.max_record_bytes} bytes")
    if not lines:
        return None
    try:
        text = b"\n".join(lines).decode("utf-8")
    except UnicodeDecodeError as exc:
        return make.drop(start, "bad_record", f"line {start}: not UTF-8 ({exc.reason})")
    return make.doc(start, text)


def _text(chunks: Iterator[bytes], make: _Maker) -> Iterator[Document | Dropped]:
    limit = make.options.max_record_bytes
    blank_mode = make.options.text_mode == "blank"
    lines: list[bytes] = []
    start, size, oversize = 0, 0, False
    for number, line in _lines(chunks, limit):
        if number == 0 and line is not None and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if line is not None and not line.strip():  # a blank line ends a block
            record = _block_record(start, lines, oversize, make)
            if record is not None:
                yield record
            lines, size, oversize = [], 0, False
            continue
        if not lines and not oversize:
            start = number
        if line is None or size + len(line) + 1 > limit:
            lines, oversize = [], True  # past the limit only the line count matters
        elif not oversize:
            lines.append(line)
            size += len(line) + 1
        if not blank_mode:
            record = _block_record(start, lines, oversize, make)
            if record is not None:
                yield record
            lines, size, oversize = [], 0, False
    record = _block_record(start, lines, oversize, make)
    if record is not None:
        yield record


def _readable_seekable(stream: BinaryIO, stack: ExitStack) -> BinaryIO:
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        return stream
    # A real temporary file, not a SpooledTemporaryFile: before Python 3.11 the latter lacks
    # readable()/seekable(), which pyarrow's file wrapper calls.
    spool = stack.enter_context(tempfile.TemporaryFile())
    shutil.copyfileobj(stream, spool, READ_CHUNK)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _parquet(stream: BinaryIO, make: _Maker, stack: ExitStack) -> Iterator[Document | Dropped]:
    import pyarrow as pa  # pyarrow: only Parquet corpora need it
    import pyarrow.parquet as pq  # pyarrow: only Parquet corpora need it

    options = make.options
    try:
        pfile = pq.ParquetFile(_readable_seekable(stream, stack))
    except (pa.ArrowException, ValueError) as exc:
        yield make.drop("bad_file:0", "bad_file", f"not a readable Parquet file: {exc}")
        return
    schema = pfile.schema_arrow
    if options.text_field not in schema.names:
        raise UserError(
            f"corpus file {make.relpath!r} has no column {options.text_field!r} "
            f"(columns: {', '.join(schema.names)})"
        )
    # Title and id columns are optional, like the JSON fields: absent means no title.
    optional = [f for f in (options.title_field, options.id_field) if f in schema.names]
    fields = [options.text_field, *optional]
    text_type = schema.field(options.text_field).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        if not (pa.types.is_binary(text_type) or pa.types.is_large_binary(text_type)):
            raise UserError(
                f"corpus file {make.relpath!r}: column {options.text_field!r} is {text_type}, "
                "not a string column"
            )
    columns = list(dict.fromkeys(fields))
    row = 0
    try:
        for batch in pfile.iter_batches(batch_size=options.batch_rows, columns=columns):
            data = {name: batch.column(name).to_pylist() for name in columns}
            for i in range(batch.num_rows):
                record = {name: data[name][i] for name in columns}
                yield _parquet_row(row, record, make)
                row += 1
    except (pa.ArrowException, OSError) as exc:
        yield make.drop(f"bad_file:{row}", "bad_file", f"unreadable from row {row}: {exc}")


def _parquet_row(row: int, record: dict, make: _Maker) -> Document | Dropped:
    title = make.title(record)
    text = record[make.options.text_field]
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return make.drop(row, "bad_record", f"row {row}: not UTF-8 ({exc.reason})", title)
    if text is None:
        return make.drop(
            row, "bad_record", f"row {row}: {make.options.text_field!r} is null", title
        )
    if len(text) > make.options.max_record_bytes:  # characters: a cheap lower bound on bytes
        return make.drop(row, "too_large", f"row {row}: over the record limit", title)
    return make.doc(row, text, title)


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
    make = _Maker(relpath, options)
    with ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            source = stack.enter_context(open(source, "rb"))
        if fmt == "parquet":
            yield from _parquet(source, make, stack)
            return
        reader = _jsonl if fmt == "jsonl" else _text
        count = 0
        try:
            for record in reader(_chunks(source, compression), make):
                count += 1
                yield record
        except _stream_errors() as exc:
            detail = f"cannot read {compression or 'file'} past record {count}: {exc}"
            yield make.drop(f"bad_file:{count}", "bad_file", detail)
