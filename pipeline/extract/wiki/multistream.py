"""Multistream ``.xml.bz2`` dumps: split one big dump into ranges that workers read on their own.

Wikipedia's ``*-pages-articles-multistream.xml.bz2`` is a concatenation of independent bz2
streams: stream 0 holds the XML header (``<mediawiki ...>`` and ``<siteinfo>``), then each stream
holds about 100 ``<page>`` elements, and a last stream holds ``</mediawiki>``. The companion
``*-multistream-index.txt.bz2`` has one line ``OFFSET:PAGEID:TITLE`` per page, OFFSET being the
byte offset in the compressed file of the stream that holds the page.

:func:`plan_dump` (:func:`read_index` + :func:`read_header` + :func:`plan_ranges`) cuts the file
into byte ranges of whole streams, or finds the streams by :func:`scan_stream_offsets` when there
is no index; :func:`open_range` turns one range into a complete XML document (header + pages +
footer) that any streaming XML parser reads. Writing such a file and its index from a plain dump
is :mod:`pipeline.extract.wiki.recompress`. Everything here takes file objects: no Beam, no
paths, so it works on any Beam FileSystem and in tests alike. All sizes are bytes; "offset"
means an offset in the compressed file.
"""

from __future__ import annotations

import bz2
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ground.errors import UserError

FOOTER = b"</mediawiki>"
READ_CHUNK = 1 << 20  # compressed bytes read at a time
OUT_CHUNK = 1 << 20  # most decompressed bytes held at once per reader
DEFAULT_RANGE_BYTES = 64 << 20  # compressed bytes per range (~250 MB of XML)
HEADER_CAP = 64 << 20  # a header (everything before the first <page>) larger than this is junk

_PAGE_START = re.compile(rb"<page[\s>]")
_STREAM_START = re.compile(rb"BZh[1-9]1AY&SY")  # stream header + first block's magic
# A run of index lines with the same OFFSET (one stream's pages): OFFSET:PAGEID:TITLE\n...
_INDEX_RUN = re.compile(rb"(\d+):[^:\n]*:[^\n]*\n(?:\1:[^:\n]*:[^\n]*\n)*")
_MULTISTREAM_NAME = re.compile(r"^(?P<base>.*-multistream)(?P<part>\d*)\.xml(?P<rest>.*)\.bz2$")


def index_path_for(path: str) -> str:
    """The index file that belongs to a multistream dump, by Wikipedia's naming convention.

    ``X-multistream.xml.bz2`` -> ``X-multistream-index.txt.bz2``; part files
    ``X-multistream3.xml-p1p41242.bz2`` -> ``X-multistream-index3.txt-p1p41242.bz2``. Any other
    name ``Y.xml.bz2`` (or ``Y.bz2``) -> ``Y-index.txt.bz2``. Works on local and ``gs://`` paths.
    """
    head, sep, name = path.rpartition("/")
    m = _MULTISTREAM_NAME.match(name)
    if m:
        name = f"{m['base']}-index{m['part']}.txt{m['rest']}.bz2"
    else:
        stem = name[: -len(".bz2")] if name.endswith(".bz2") else name
        stem = stem[: -len(".xml")] if stem.endswith(".xml") else stem
        name = f"{stem}-index.txt.bz2"
    return f"{head}{sep}{name}"


def find_index(
    path: str, explicit: str | None = None, exists: Callable[[str], bool] = os.path.exists
) -> str | None:
    """The index of dump ``path``: ``explicit`` if given (it must exist), else the conventional
    name when that file exists, else None. Pass ``exists=FileSystems.exists`` for ``gs://``."""
    if explicit is not None:
        if not exists(explicit):
            raise UserError(f"index file {explicit} does not exist")
        return explicit
    candidate = index_path_for(path)
    return candidate if exists(candidate) else None


def is_multistream(fileobj: BinaryIO, probe_bytes: int = 1 << 20) -> bool:
    """True when the bz2 data read from ``fileobj`` has a second stream starting within the first
    ``probe_bytes`` compressed bytes (a multistream header stream is a few hundred bytes).

    Reads at most ``probe_bytes`` + one chunk; decompressed output is discarded as it comes.
    """
    dec = bz2.BZ2Decompressor()
    consumed = 0
    try:
        while consumed < probe_bytes and not dec.eof:
            block = (
                fileobj.read(min(READ_CHUNK, probe_bytes - consumed)) if dec.needs_input else b""
            )
            if dec.needs_input and not block:
                return False
            consumed += len(block)
            dec.decompress(block, OUT_CHUNK)
    except OSError:
        return False
    if not dec.eof:
        return False
    after = dec.unused_data[:3]
    return after + fileobj.read(3 - len(after)) == b"BZh"  # a second stream follows


def _index_text(fileobj: BinaryIO) -> BinaryIO:
    """The index's text as a binary reader, decompressing when it is bz2."""
    head = fileobj.read(3)
    raw = io.BufferedReader(_Prepend(head, fileobj))  # type: ignore[arg-type]
    return bz2.BZ2File(raw) if head == b"BZh" else raw  # type: ignore[return-value]


def iter_index(fileobj: BinaryIO) -> Iterator[tuple[int, str, str]]:
    """Yield ``(offset, page_id, title)`` per line of an index, bz2-compressed or plain.

    Titles may contain ``:``; only the first two colons split. Raises UserError on a bad line.
    """
    text = _index_text(fileobj)
    try:
        for number, line in enumerate(text, 1):
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            parts = line.split(b":", 2)
            if len(parts) != 3 or not parts[0].isdigit():
                raise UserError(f"index line {number} is not OFFSET:PAGEID:TITLE: {line[:80]!r}")
            yield int(parts[0]), parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserError(f"index file is unreadable: {exc}") from exc


def read_index(fileobj: BinaryIO) -> list[int]:
    """Sorted distinct stream offsets (compressed bytes) listed in an index (bz2 or plain).

    Real indexes list ~100 pages per offset; only the offsets are kept, so memory is one int
    per stream. Parsed a chunk at a time with regexes, not line by line: enwiki's index has
    ~25M lines. Raises UserError on a bad or empty index.
    """
    text = _index_text(fileobj)
    offsets: set[int] = set()
    carry, lines_before = b"", 0
    try:
        while True:
            chunk = text.read(READ_CHUNK)
            block = carry + chunk
            cut = block.rfind(b"\n") + 1 if chunk else len(block)  # whole lines only
            block, carry = block[:cut], block[cut:]
            if block and not block.endswith(b"\n"):
                block += b"\n"  # the last line of the file has no newline
            pos = 0
            for run in _INDEX_RUN.finditer(block):  # one match per stream, not per line
                _check_index_gap(block, pos, run.start(), lines_before)
                offsets.add(int(run.group(1)))
                pos = run.end()
            _check_index_gap(block, pos, len(block), lines_before)
            lines_before += block.count(b"\n")
            if not chunk:
                break
    except (OSError, EOFError) as exc:
        raise UserError(f"index file is unreadable: {exc}") from exc
    if not offsets:
        raise UserError("index file lists no pages")
    return sorted(offsets)


def _check_index_gap(block: bytes, start: int, end: int, lines_before: int) -> None:
    """UserError naming the first line of ``block[start:end]`` that is not blank."""
    if block[start:end].strip():
        bad = block[start:end].lstrip().split(b"\n", 1)[0]
        number = lines_before + block.count(b"\n", 0, start + block[start:end].find(bad)) + 1
        raise UserError(f"index line {number} is not OFFSET:PAGEID:TITLE: {bad[:80]!r}")


def header_end(offsets: list[int]) -> int:
    """Offset of the first page stream: bytes ``[0, header_end)`` are the header stream(s).

    0 when the first stream holds the header and pages together (not Wikipedia's layout, but
    handled: :func:`open_range` then takes the header from that stream itself).
    """
    if not offsets:
        raise UserError("index file lists no pages")
    return offsets[0]


def plan_ranges(offsets: list[int], file_size: int, target_bytes: int) -> list[tuple[int, int]]:
    """Group consecutive streams into ``(start, end)`` byte ranges of about ``target_bytes``.

    Stream i spans ``[offsets[i], offsets[i+1])``; the last one runs to ``file_size`` and so the
    last range also holds the footer stream. A range closes as soon as it reaches
    ``target_bytes`` (``1`` gives one range per stream). Deterministic; ranges are contiguous
    and cover ``[offsets[0], file_size)``.
    """
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    if not offsets:
        return []
    if offsets[-1] >= file_size:
        raise UserError(f"index offset {offsets[-1]} is beyond the file size {file_size}")
    bounds = [*offsets, file_size]
    ranges: list[tuple[int, int]] = []
    start = bounds[0]
    for nxt in bounds[1:]:
        if nxt - start >= target_bytes or nxt == file_size:
            ranges.append((start, nxt))
            start = nxt
    return ranges


@dataclass(frozen=True)
class DumpPlan:
    """How to read one multistream dump in pieces: ``open_range(f, start, end, header)`` for
    each ``(start, end)`` in ``ranges`` gives one complete XML document."""

    header: bytes
    ranges: list[tuple[int, int]]


def plan_dump(
    opener: Callable[[str], BinaryIO],
    path: str,
    index_path: str | None,
    file_size: int,
    target_bytes: int = DEFAULT_RANGE_BYTES,
) -> DumpPlan:
    """Read the index and the header of dump ``path`` (``file_size`` bytes) and cut it into
    ranges of about ``target_bytes`` compressed bytes. ``opener`` opens a path for binary,
    seekable reading without decompressing (e.g. ``FileSystems.open(p, compression_type=
    CompressionTypes.UNCOMPRESSED)``). Runs once per dump, where the pipeline is built.

    With ``index_path=None`` the stream offsets come from :func:`scan_stream_offsets`, which
    reads the whole compressed file once (the index is a few % of it): slower, same plan
    boundaries up to the footer stream. A single-stream dump then plans as one range.
    """
    if index_path is not None:
        with opener(index_path) as f:
            offsets = read_index(f)
        with opener(path) as f:
            header = read_header(f, header_end(offsets))
    else:
        with opener(path) as f:
            offsets = scan_stream_offsets(f)
            if not offsets or offsets[0] != 0:
                raise UserError(f"{path} does not start with a bzip2 stream")
            header, has_page = _read_header(f, 0)
        if not has_page:
            offsets = offsets[1:]  # stream 0 is the header alone, as in Wikipedia's files
        if not offsets:
            raise UserError(f"{path} holds only a header stream, no pages")
    return DumpPlan(header, plan_ranges(offsets, file_size, target_bytes))


def scan_stream_offsets(fileobj: BinaryIO, chunk: int = 8 << 20) -> list[int]:
    """Offsets of the bz2 streams in ``fileobj``, found without an index or decompression.

    A stream starts byte-aligned with ``BZh`` + level digit + the block magic ``1AY&SY``;
    blocks inside a stream are bit-aligned, so a 10-byte match elsewhere is a ~2**-77 chance
    per position (and would fail loudly when read). Reads ``chunk`` bytes at a time.
    """
    fileobj.seek(0)
    offsets: list[int] = []
    keep = 9  # a match may straddle two chunks
    tail, base = b"", 0  # base: file offset of tail[0]
    while True:
        data = fileobj.read(chunk)
        if not data:
            return offsets
        block = tail + data
        offsets += [base + m.start() for m in _STREAM_START.finditer(block)]
        tail = block[-keep:]
        base += len(block) - len(tail)


def read_header(fileobj: BinaryIO, header_end: int) -> bytes:
    """The decompressed XML header: stream 0's text before its first ``<page>``.

    That is ``<mediawiki ...>`` + ``<siteinfo>...</siteinfo>`` plus whitespace; a
    ``</mediawiki>`` in it is cut off. With ``header_end > 0`` the header stream must hold no
    pages (the index would not list them, so they would be lost): UserError if it does.
    """
    return _read_header(fileobj, header_end)[0]


def _read_header(fileobj: BinaryIO, header_end: int) -> tuple[bytes, bool]:
    """:func:`read_header`, and whether stream 0 holds a page (only when ``header_end == 0``)."""
    fileobj.seek(0)
    text = bytearray()
    limit = header_end if header_end > 0 else None
    try:
        # Lazily: with header_end == 0, stream 0 may be a whole single-stream dump.
        for piece in _iter_streams(fileobj, limit, first_stream_only=limit is None):
            text += piece
            page = _PAGE_START.search(text, max(0, len(text) - len(piece) - 6))
            if page:
                if header_end > 0:
                    raise UserError(
                        f"the header stream [0, {header_end}) holds a <page> the index does "
                        "not list"
                    )
                return bytes(text[: _line_start(text, page.start())]), True
            if len(text) > HEADER_CAP:
                raise UserError(f"no <page> in the first {HEADER_CAP} bytes: not a MediaWiki dump")
    except (OSError, EOFError) as exc:
        raise UserError(f"the header stream is not complete bzip2 data: {exc}") from exc
    if b"<mediawiki" not in text:
        raise UserError("the first bz2 stream holds no <mediawiki> element: not a MediaWiki dump")
    cut = text.find(FOOTER)
    return bytes(text if cut < 0 else text[:cut]), False


def open_range(fileobj: BinaryIO, start: int, end: int, header: bytes) -> io.BufferedReader:
    """A binary reader of one range as a complete XML document.

    Yields ``header`` (from :func:`read_header`; skipped when ``start == 0`` since stream 0
    brings its own), the decompressed streams in ``[start, end)``, then ``</mediawiki>`` unless
    the range holds it or ends at the end of the file (a cut file stays cut, so the parser
    reports it as it would for the whole file). Streams are decompressed one chunk at a time:
    memory stays near :data:`OUT_CHUNK` + :data:`READ_CHUNK` whatever the range size. A range
    ending inside a stream raises EOFError after its data, like ``bz2.open``.
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad range [{start}, {end})")
    return io.BufferedReader(_IterRaw(_range_pieces(fileobj, start, end, header)), OUT_CHUNK)


def _range_pieces(fileobj: BinaryIO, start: int, end: int, header: bytes) -> Iterator[bytes]:
    if start > 0:
        yield header
    fileobj.seek(start)
    tail = b""  # last bytes seen, to find a </mediawiki> that spans two pieces
    seen_footer = False
    try:
        for piece in _iter_streams(fileobj, end - start):
            seen_footer = seen_footer or FOOTER in tail + piece
            tail = piece[-len(FOOTER) :]
            yield piece
    except OSError as exc:
        raise UserError(
            f"bytes at offset {start} are not bz2 streams ({exc}): the index does not match "
            "the file"
        ) from exc
    if not seen_footer and fileobj.read(1):
        yield FOOTER + b"\n"


def _iter_streams(
    fileobj: BinaryIO, limit: int | None, first_stream_only: bool = False
) -> Iterator[bytes]:
    """Decompressed pieces (each <= OUT_CHUNK) of the bz2 streams in the next ``limit`` bytes of
    ``fileobj`` (to its end when None). EOFError when the data ends inside a stream."""
    remaining = limit
    dec = bz2.BZ2Decompressor()
    while True:
        if dec.eof:
            if first_stream_only:
                return
            block = dec.unused_data  # bytes already read that belong to the next stream
            if not block:
                block = _read(fileobj, remaining)
                remaining = None if remaining is None else remaining - len(block)
                if not block:
                    return
            dec = bz2.BZ2Decompressor()
        elif dec.needs_input:
            block = _read(fileobj, remaining)
            if not block:
                raise EOFError("compressed data ends before the end-of-stream marker")
            remaining = None if remaining is None else remaining - len(block)
        else:
            block = b""  # the decompressor still holds output from earlier input
        out = dec.decompress(block, OUT_CHUNK)
        if out:
            yield out


def _read(fileobj: BinaryIO, remaining: int | None) -> bytes:
    if remaining is not None and remaining <= 0:
        return b""
    return fileobj.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))


def _line_start(text: bytes | bytearray, pos: int) -> int:
    """``pos`` moved back over indentation to the start of its line (when only spaces precede
    it on that line), so ``  <page>`` stays whole."""
    i = pos
    while i > 0 and text[i - 1] in b" \t":
        i -= 1
    return i if i == 0 or text[i - 1] == 0x0A else pos


class _IterRaw(io.RawIOBase):
    """A raw binary stream over an iterator of byte pieces."""

    def __init__(self, pieces: Iterator[bytes]):
        self._pieces = pieces
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # b: a writable buffer (memoryview, bytearray)
        while not self._buf:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buf = memoryview(piece)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _Prepend(io.RawIOBase):
    """``fileobj`` with ``head`` (bytes already read from it) put back in front."""

    def __init__(self, head: bytes, fileobj: BinaryIO):
        self._head = head
        self._f = fileobj

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._f.read(len(b))
        b[: len(data)] = data
        return len(data)
