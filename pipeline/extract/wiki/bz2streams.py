"""Reading concatenated bz2 streams: one byte range of a multistream dump as one XML document.

A multistream ``.xml.bz2`` (layout in :mod:`pipeline.extract.wiki.multistream`, which plans the
ranges) is a concatenation of independent bz2 streams: stream 0 holds the XML header, each
later stream about 100 ``<page>`` elements, the last one ``</mediawiki>``. Here: finding streams
without an index (:func:`scan_stream_offsets`), reading the header (:func:`read_header`), and
turning one range ``[start, end)`` of whole streams into a complete XML document
(:func:`open_range`), decompressed a chunk at a time. :mod:`pipeline.extract.wiki.recompress`
reads its source with :func:`iter_streams` too. File objects only, no Beam, no paths. All sizes
are bytes; "offset" means an offset in the compressed file.
"""

from __future__ import annotations

import bz2
import io
import re
from collections.abc import Iterator
from typing import BinaryIO

from ground.errors import UserError

FOOTER = b"</mediawiki>"
READ_CHUNK = 1 << 20  # compressed bytes read at a time
OUT_CHUNK = 1 << 20  # most decompressed bytes held at once per reader
HEADER_CAP = 64 << 20  # a header (everything before the first <page>) larger than this is junk

PAGE_START = re.compile(rb"<page[\s>]")
_STREAM_START = re.compile(rb"BZh[1-9]1AY&SY")  # stream header + first block's magic


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
    return scan_header(fileobj, header_end)[0]


def scan_header(fileobj: BinaryIO, header_end: int) -> tuple[bytes, bool]:
    """:func:`read_header`, and whether stream 0 holds a page (only when ``header_end == 0``)."""
    fileobj.seek(0)
    text = bytearray()
    limit = header_end if header_end > 0 else None
    try:
        # Lazily: with header_end == 0, stream 0 may be a whole single-stream dump.
        for piece in iter_streams(fileobj, limit, first_stream_only=limit is None):
            text += piece
            page = PAGE_START.search(text, max(0, len(text) - len(piece) - 6))
            if page:
                if header_end > 0:
                    raise UserError(
                        f"the header stream [0, {header_end}) holds a <page> the index does "
                        "not list"
                    )
                return bytes(text[: line_start(text, page.start())]), True
            if len(text) > HEADER_CAP:
                raise UserError(f"no <page> in the first {HEADER_CAP} bytes: not a MediaWiki dump")
    except (OSError, EOFError) as exc:
        raise UserError(f"the header stream is not complete bzip2 data: {exc}") from exc
    if b"<mediawiki" not in text:
        raise UserError("the first bz2 stream holds no <mediawiki> element: not a MediaWiki dump")
    cut = text.find(FOOTER)
    return bytes(text if cut < 0 else text[:cut]), False


def open_range(fileobj: BinaryIO, start: int, end: int, header: bytes) -> KeepBeforeCut:
    """A binary reader of one range as a complete XML document.

    Yields ``header`` (from :func:`read_header`; skipped when ``start == 0`` since stream 0
    brings its own), the decompressed streams in ``[start, end)``, then ``</mediawiki>`` unless
    the range holds it or ends at the end of the file (a cut file stays cut, so the parser
    reports it as it would for the whole file). Streams are decompressed one chunk at a time:
    memory stays near :data:`OUT_CHUNK` + :data:`READ_CHUNK` whatever the range size. A range
    ending inside a stream (a truncated file) raises EOFError, like ``bz2.open``, but only
    after every byte decompressed before the cut has been read (:class:`KeepBeforeCut`).
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad range [{start}, {end})")
    return KeepBeforeCut(_range_pieces(fileobj, start, end, header))


def _range_pieces(fileobj: BinaryIO, start: int, end: int, header: bytes) -> Iterator[bytes]:
    if start > 0:
        yield header
    fileobj.seek(start)
    tail = b""  # last bytes seen, to find a </mediawiki> that spans two pieces
    seen_footer = False
    started = False
    try:
        for piece in iter_streams(fileobj, end - start):
            started = True
            seen_footer = seen_footer or FOOTER in tail + piece
            tail = piece[-len(FOOTER) :]
            yield piece
    except OSError as exc:
        if started:  # corrupt data further in: a cut after the good bytes, not a bad index
            raise
        raise UserError(
            f"bytes at offset {start} are not bz2 streams ({exc}): the index does not match "
            "the file"
        ) from exc
    if not seen_footer and fileobj.read(1):
        yield FOOTER + b"\n"


def iter_streams(
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


def line_start(text: bytes | bytearray, pos: int) -> int:
    """``pos`` moved back over indentation to the start of its line (when only spaces precede
    it on that line), so ``  <page>`` stays whole."""
    i = pos
    while i > 0 and text[i - 1] in b" \t":
        i -= 1
    return i if i == 0 or text[i - 1] == 0x0A else pos


class Prepend(io.RawIOBase):
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


def open_whole(fileobj: BinaryIO) -> KeepBeforeCut:
    """A whole ``.bz2`` file (any number of streams) as a ``read(n)`` stream of its XML that
    hands out every byte decompressed before a cut, then raises the cut's error.

    ``bz2.BZ2File.read(n)`` raises ``EOFError`` at a truncation and drops what that call had
    already decompressed (up to ``n`` bytes: the XML reader's 1 MiB), so complete pages before
    the cut were lost uncounted.
    """
    head = fileobj.read(3)
    if not head:
        return KeepBeforeCut(iter(()))  # empty: the XML reader reports "the file is empty"
    if head != b"BZh":
        return KeepBeforeCut(_raise(OSError(not_bz2(head))))
    return KeepBeforeCut(iter_streams(Prepend(head, fileobj), None))


def not_bz2(head: bytes) -> str:
    """What a file named ``.bz2`` holds instead, from its first bytes."""
    if head[:2] == b"\x1f\x8b":
        return "gzip data, not bz2 (a .gz file named .bz2?)"
    if head.lstrip()[:1] == b"<":
        return "uncompressed XML, not bz2 (name it .xml)"
    return f"not bz2 data (it starts with {head!r})"


def _raise(exc: BaseException) -> Iterator[bytes]:
    raise exc
    yield b""  # a generator: the error comes at the first read, as a cut


class KeepBeforeCut:
    """``read(n)`` over decompressed pieces; a decompression error (``EOFError``: the data ends
    inside a stream; ``OSError``: corrupt data) is raised by the first read after every byte
    decompressed before it has been returned. Holds at most ``n`` + one piece."""

    def __init__(self, pieces: Iterator[bytes]):
        self._pieces = pieces
        self._buf = bytearray()
        self._error: BaseException | None = None
        self._done = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buf) < n):
            try:
                piece = next(self._pieces, None)
            except (EOFError, OSError) as exc:
                self._error, self._done = exc, True
                break
            if piece is None:
                self._done = True
                break
            self._buf += piece
        if not self._buf and self._error is not None:
            error, self._error = self._error, None
            raise error
        n = len(self._buf) if n < 0 else min(n, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out
