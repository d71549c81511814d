"""Line-based corpus files: (possibly compressed) bytes -> records.

:func:`read_line_records` decompresses (``.gz``, ``.zst``, ``.bz2`` or none) a chunk at a time,
cuts the bytes into lines (LF or CRLF) and turns them into records through a
:class:`~pipeline.extract.corpora.RecordMaker`: one JSON object per line (``jsonl``), or one
document per line or per blank-line-separated block (``text``, modes ``line``/``blank``). Keys
are 0-based line numbers (of the block's first line in ``blank`` mode).

WikiExtractor output (:mod:`pipeline.extract.corpus_wikiextractor`) is recognised by its first
line: a ``sniff`` file (a name without extension, as WikiExtractor writes) holds ``<doc ...>``
blocks or JSON lines with id/url/title/text, or is one ``bad_file``; a ``text`` file whose first
line opens a ``<doc ...>`` is read as WikiExtractor output too, not as text with markup in it.

Memory is bounded: at most about :data:`READ_CHUNK` decompressed bytes per piece, and a record
over ``max_record_bytes`` is skipped as ``too_large`` without being held. A broken line is a
``bad_record``; a file that cannot be decompressed past some point ends with one ``bad_file``.
"""

from __future__ import annotations

import functools
import itertools
import json
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from ground.errors import UserError
from pipeline.common.records import Document, Dropped
from pipeline.extract import corpus_wikiextractor as wikiextractor
from pipeline.extract.wiki import bz2streams

if TYPE_CHECKING:
    from pipeline.extract.corpora import RecordMaker

READ_CHUNK = 1 << 20  # bytes per read, and at most per decompressed piece (.gz)
# zstd has no output bound per call: feeding 64 KiB keeps pieces small for normal data (a
# deliberate decompression bomb can still expand one feed a lot).
ZSTD_FEED = 64 << 10
_BOM = b"\xef\xbb\xbf"


class CorruptData(ValueError):
    """Compressed data that is not what its name says, or is damaged (a bz2 ``OSError``)."""


def read_line_records(
    stream: BinaryIO, fmt: str, compression: str, make: RecordMaker
) -> Iterator[Document | Dropped]:
    """Every record of one ``jsonl``, ``text`` or ``sniff`` file (``compression``: ``""``,
    ``.gz``, ``.zst`` or ``.bz2``), then one ``bad_file`` record if the data breaks off."""
    count = 0
    try:
        for record in _records(_chunks(stream, compression), fmt, make):
            count += 1
            yield record
    except _stream_errors() as exc:
        detail = f"cannot read {compression or 'file'} past record {count}: {exc}"
        yield make.drop(f"bad_file:{count}", "bad_file", detail)


def _records(chunks: Iterator[bytes], fmt: str, make: RecordMaker) -> Iterator[Document | Dropped]:
    """Pick the reader: by format, and for ``text``/``sniff`` files by their first line."""
    limit = make.options.max_record_bytes
    if fmt in ("text", "sniff"):
        head, chunks = _peek_line(chunks, limit)
        form = wikiextractor.sniff(head, json_too=fmt == "sniff")
        if form:
            yield from wikiextractor.read(form, _lines(chunks, limit), make)
            return
        if fmt == "sniff":  # a name without extension that is not WikiExtractor output
            if head.strip():
                detail = (
                    "no known extension, and not WikiExtractor output (<doc ...> blocks or "
                    f"JSON lines with id, url, title, text): it starts with {head[:40]!r}"
                )
                yield make.drop("bad_file:0", "bad_file", detail)
            return
    yield from (_jsonl if fmt == "jsonl" else _text)(chunks, make)


def _peek_line(chunks: Iterator[bytes], limit: int) -> tuple[bytes, Iterator[bytes]]:
    """The first bytes of ``chunks``, up to the end of the first non-blank line (at most about
    ``limit`` bytes: a longer line is judged on its start), and an iterator over all of them."""
    head: list[bytes] = []
    size, seen = 0, False  # seen: a non-blank byte was read
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        rest = chunk if seen else chunk.lstrip()
        seen = seen or bool(rest)
        if (seen and b"\n" in rest) or size > limit:
            break
    data = b"".join(head)
    return data, itertools.chain([data], chunks)


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
    if compression == ".bz2":
        yield from _bz2_chunks(stream)
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


def _bz2_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Decompressed pieces of a ``.bz2`` file of any number of streams (``wikiextractor
    --compress`` writes one per file); every piece before a cut is yielded first."""
    head = stream.read(3)
    if not head:
        return
    if head != b"BZh":
        raise CorruptData(_not_bz2(head))
    try:
        yield from bz2streams.iter_streams(bz2streams.Prepend(head, stream), None)
    except OSError as exc:  # what the bz2 module raises for damaged data
        raise CorruptData(f"damaged bz2 data ({exc})") from None


def _not_bz2(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return bz2streams.not_bz2(head)  # gzip data
    return f"not bz2 data (it starts with {head!r}): an uncompressed file named .bz2?"


def _stream_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "this compressed file is broken" (not transient I/O errors)."""
    errors: list[type[BaseException]] = [EOFError, zlib.error, CorruptData]
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


def _jsonl(chunks: Iterator[bytes], make: RecordMaker) -> Iterator[Document | Dropped]:
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
            yield make.drop(number, "bad_record", f"line {number + 1}: not UTF-8 ({exc.reason})")
            continue
        except (ValueError, RecursionError) as exc:
            yield make.drop(number, "bad_record", f"line {number + 1}: not JSON ({exc})")
            continue
        if not isinstance(record, dict):
            yield make.drop(number, "bad_record", f"line {number + 1}: not a JSON object")
            continue
        title = make.title(record)
        text = record.get(field)
        if not isinstance(text, str):
            what = "missing" if text is None else f"a {type(text).__name__}, not a string"
            detail = f"line {number + 1}: field {field!r} {what}"
            yield make.drop(number, "bad_record", detail, title)
            continue
        yield make.doc(number, text, title)


def _block_record(
    start: int, lines: list[bytes], oversize: bool, make: RecordMaker
) -> Document | Dropped | None:
    """One plain-text record (a line, or a blank-line-separated block) -> a record."""
    if oversize:
        return make.drop(start, "too_large", f"record over {make.options.max_record_bytes} bytes")
    if not lines:
        return None
    try:
        text = b"\n".join(lines).decode("utf-8")
    except UnicodeDecodeError as exc:
        return make.drop(start, "bad_record", f"line {start + 1}: not UTF-8 ({exc.reason})")
    return make.doc(start, text)


def _text(chunks: Iterator[bytes], make: RecordMaker) -> Iterator[Document | Dropped]:
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
