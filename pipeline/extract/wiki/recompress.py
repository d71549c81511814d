"""Write a multistream ``.xml.bz2`` dump and its index from a plain (single-stream) dump.

:func:`recompress` is the writing side of :mod:`pipeline.extract.wiki.multistream`: it cuts
the decompressed XML at ``<page>``/``</page>`` boundaries (:class:`_PageScanner`, no XML
parsing) and writes one bz2 stream per group of pages plus the ``OFFSET:PAGEID:TITLE`` index
(:class:`_StreamWriter`), in the layout :func:`pipeline.extract.wiki.multistream.plan_dump`
reads. File objects only, no paths. All sizes are bytes; "offset" means an offset in the
compressed output.
"""

from __future__ import annotations

import bz2
import io
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from ground.errors import UserError
from pipeline.extract.wiki import bz2streams as bs  # bs.READ_CHUNK read per call: tests patch it
from pipeline.extract.wiki.bz2streams import (
    FOOTER,
    HEADER_CAP,
    PAGE_START,
    Prepend,
    iter_streams,
    line_start,
)


@dataclass
class RecompressStats:
    """What :func:`recompress` did. ``complete`` is False when the source ends before
    ``</mediawiki>`` (a cut dump): every complete page is still written, ``cut`` says why the
    source ended and ``dropped_bytes`` counts the bytes of an incomplete last page left out."""

    pages: int = 0
    streams: int = 0  # page streams, header and footer streams not counted
    xml_bytes: int = 0  # decompressed bytes read from the source
    bytes_out: int = 0  # compressed bytes written
    complete: bool = True
    cut: str = ""
    dropped_bytes: int = 0
    missing_ids: int = 0  # pages without <id> or <title> (index fields left empty)


def recompress(
    src: BinaryIO,
    dst: BinaryIO,
    index: BinaryIO,
    pages_per_stream: int = 100,
    compresslevel: int = 9,
    workers: int = 1,
) -> RecompressStats:
    """Rewrite a plain (single- or multi-stream) MediaWiki ``.xml.bz2`` as multistream + index.

    Writes to ``dst`` a header stream (text before the first ``<page>``), one stream per
    ``pages_per_stream`` pages and a footer stream (``</mediawiki>``), and to ``index`` one
    bz2-compressed line ``OFFSET:PAGEID:TITLE`` per page (first ``<id>`` and ``<title>`` of the
    page, XML entities unescaped, as in Wikipedia's index). The text is scanned for
    ``<page>``/``</page>`` boundaries, not parsed: memory is about ``2 * workers + 1`` streams of
    XML. ``workers`` threads compress streams while the source is decompressed; the output does
    not depend on it. The output decompresses to the source text, byte for byte, when the source
    is complete. Deterministic. UserError when ``src`` is empty, not bz2, or not a MediaWiki dump.
    """
    if pages_per_stream < 1:
        raise UserError(f"pages per stream must be >= 1, got {pages_per_stream}")
    magic = src.read(3)
    if not magic:
        raise UserError("input is empty")
    if magic != b"BZh":
        raise UserError("input is not bzip2 data (it does not start with 'BZh')")
    source = io.BufferedReader(Prepend(magic, src), bs.READ_CHUNK)  # type: ignore[arg-type]
    out = _StreamWriter(dst, index, compresslevel, workers)
    scanner = _PageScanner(out, pages_per_stream)
    stats = scanner.stats
    try:
        try:
            for piece in iter_streams(source, None):  # type: ignore[arg-type]
                stats.xml_bytes += len(piece)
                scanner.feed(piece)
        except EOFError:
            stats.complete, stats.cut = False, "compressed data ends inside a bz2 stream"
        except OSError as exc:
            if stats.xml_bytes == 0:
                raise UserError(f"input is not valid bzip2 data: {exc}") from exc
            stats.complete = False
            stats.cut = f"invalid bzip2 data after {stats.xml_bytes} decompressed bytes: {exc}"
        scanner.finish()
    finally:
        out.shutdown()
    stats.streams, stats.bytes_out = out.streams, out.offset
    return stats


class _StreamWriter:
    """Collects the text of one bz2 stream at a time and writes the streams, in order, to
    ``dst``, with one index line per page once the stream's offset is known.

    With ``workers > 1`` streams are compressed by a thread pool (``bz2`` releases the GIL)
    while the caller keeps decompressing; at most ``2 * workers`` streams wait, so memory is
    about that many streams of XML. The bytes written do not depend on ``workers``.
    """

    def __init__(self, dst: BinaryIO, index: BinaryIO, level: int, workers: int):
        self.dst, self.index, self.level = dst, index, level
        self.offset = 0  # compressed bytes written so far
        self.streams = 0  # page streams written
        self._text: list[bytes] | None = None  # the open stream's text
        self._entries: list[str] = []  # "PAGEID:TITLE" of the open stream's pages
        self._queue: deque[tuple[Future[bytes] | bytes, list[str]]] = deque()
        self._pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self._backlog = 2 * workers if workers > 1 else 0
        self._index_comp = bz2.BZ2Compressor(level)

    @property
    def is_open(self) -> bool:
        return self._text is not None

    @property
    def pages(self) -> int:
        """Pages in the open stream."""
        return len(self._entries)

    def write(self, data: bytes | bytearray) -> None:
        """Append ``data`` to the open stream, opening one if none is."""
        if self._text is None:
            self._text, self._entries = [], []
        self._text.append(bytes(data))

    def add_page(self, entry: str) -> None:
        """Record a page (``PAGEID:TITLE``) of the open stream for the index."""
        self._entries.append(entry)

    def close_stream(self) -> None:
        if self._text is None:
            return
        text, self._text = b"".join(self._text), None
        if self._pool is None:
            job: Future[bytes] | bytes = bz2.compress(text, self.level)
        else:
            job = self._pool.submit(bz2.compress, text, self.level)
        self._queue.append((job, self._entries))
        self._entries = []
        self._drain(self._backlog)

    def finish(self) -> None:
        """Close the open stream, write every queued one and the index's last bytes."""
        self.close_stream()
        self._drain(0)
        self.index.write(self._index_comp.flush())
        self.shutdown()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _drain(self, keep: int) -> None:
        while len(self._queue) > keep:
            job, entries = self._queue.popleft()
            data = job if isinstance(job, bytes) else job.result()
            lines = "".join(f"{self.offset}:{entry}\n" for entry in entries)
            self.index.write(self._index_comp.compress(lines.encode("utf-8")))
            self.streams += bool(entries)
            self.dst.write(data)
            self.offset += len(data)


_HEADER, _OUTSIDE, _IN_PAGE, _DONE = range(4)
_UTF16 = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")  # BOMs, or '<' as UTF-16
_TITLE = re.compile(rb"<title>(.*?)</title>", re.S)
_ID = re.compile(rb"<id>\s*(\d+)\s*</id>")
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def unescape_xml(text: str) -> str:
    """Resolve XML's five named entities and numeric character references, nothing else."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name[0] != "#":
            return _NAMED[name]
        return chr(int(name[2:], 16) if name[1] in "xX" else int(name[1:]))

    return _ENTITY.sub(sub, text)


class _PageScanner:
    """Cuts decompressed dump text at page boundaries and routes it into bz2 streams.

    Whitespace between pages is split at its first newline: the part up to it ends the
    previous page's stream, the rest (indentation) starts the next, as in Wikipedia's files.
    """

    def __init__(self, out: _StreamWriter, pages_per_stream: int):
        self.out, self.per_stream = out, pages_per_stream
        self.stats = RecompressStats()
        self.buf = bytearray()
        self.state = _HEADER
        self.scan_from = 0  # positions before this in buf are known not to start a tag

    def feed(self, piece: bytes) -> None:
        if self.state == _HEADER and not self.buf and piece[:2] in _UTF16:
            raise UserError("the dump is UTF-16; recompress handles UTF-8 dumps (as Wikipedia's)")
        self.buf += piece
        step = {_HEADER: self._header, _OUTSIDE: self._outside, _IN_PAGE: self._in_page}
        while self.state in step and step[self.state]():
            pass

    def _header(self) -> bool:
        page = PAGE_START.search(self.buf, self.scan_from)
        foot = self.buf.find(FOOTER, self.scan_from, page.start() if page else len(self.buf))
        if page is None and foot < 0:
            if len(self.buf) > HEADER_CAP:
                raise UserError(f"no <page> in the first {HEADER_CAP} bytes: not a MediaWiki dump")
            self.scan_from = max(0, len(self.buf) - len(FOOTER))
            return False
        pos = page.start() if page and (foot < 0 or page.start() < foot) else foot
        cut = line_start(self.buf, pos)
        if b"<mediawiki" not in self.buf[:cut]:
            raise UserError("no <mediawiki> element before the first page: not a MediaWiki dump")
        self.out.write(self.buf[:cut])
        self.out.close_stream()
        del self.buf[:cut]
        self.state, self.scan_from = _OUTSIDE, 0
        return True

    def _outside(self) -> bool:
        page = PAGE_START.search(self.buf)
        foot = self.buf.find(FOOTER, 0, page.start() if page else len(self.buf))
        if page is None and foot < 0:
            if len(self.buf) > HEADER_CAP:
                raise UserError(f"unexpected text between pages: {bytes(self.buf[:80])!r}")
            return False
        pos = page.start() if page and (foot < 0 or page.start() < foot) else foot
        cut = line_start(self.buf, pos)
        self._end_previous(cut)
        if pos == foot:
            self.out.close_stream()
            self.state = _DONE  # the rest of the text is the footer stream, written by finish()
            return False
        if self.out.pages >= self.per_stream:
            self.out.close_stream()
        self.state, self.scan_from = _IN_PAGE, 0
        return True

    def _end_previous(self, cut: int) -> None:
        """Write the gap ``buf[:cut]`` before the next tag: its first line to the open stream."""
        gap = self.buf[:cut]
        newline = gap.find(b"\n")
        if self.out.is_open and newline >= 0:
            self.out.write(gap[: newline + 1])
            del self.buf[: newline + 1]

    def _in_page(self) -> bool:
        end = self.buf.find(b"</page>", self.scan_from)
        if end < 0:
            self.scan_from = max(0, len(self.buf) - len(b"</page>"))
            return False
        end += len(b"</page>")
        page = self.buf[:end]
        self.out.write(page)  # opens a stream when none is open
        self._index(page)
        del self.buf[:end]
        self.state, self.scan_from = _OUTSIDE, 0
        return True

    def _index(self, page: bytearray) -> None:
        head = bytes(page[: 1 << 16])  # <title> and the page <id> come first
        title, pid = _TITLE.search(head), _ID.search(head)
        if title is None or pid is None:
            self.stats.missing_ids += 1
        text = unescape_xml(title.group(1).decode("utf-8", "replace")) if title else ""
        text = text.replace("\n", " ").replace("\r", " ")
        self.out.add_page(f"{pid.group(1).decode() if pid else ''}:{text}")
        self.stats.pages += 1

    def finish(self) -> None:
        """Write the footer stream; close the document when the source was cut."""
        if self.state == _HEADER:
            if b"<mediawiki" not in self.buf:
                raise UserError("no <mediawiki> element: not a MediaWiki XML dump")
            raise UserError("the dump ends before its first <page>: no page to recompress")
        if self.state == _DONE:
            footer = bytes(self.buf)
        else:
            self.stats.complete = False
            self.stats.cut = self.stats.cut or "the XML ends without </mediawiki>"
            if self.buf.strip():
                self.stats.dropped_bytes = len(self.buf)  # an incomplete last page
            else:
                self._end_previous(len(self.buf))
            footer = FOOTER + b"\n"
        self.out.close_stream()
        self.out.write(footer)
        self.out.finish()
