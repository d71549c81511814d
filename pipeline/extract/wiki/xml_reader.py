"""Streaming reader for MediaWiki XML exports (``pages-articles`` dumps), bounded memory.

:class:`WikiXmlReader` feeds a binary file object to expat in fixed-size chunks and yields one
:class:`Page` per complete ``<page>``. Memory is bounded by the chunk size plus one page's
wikitext, and a page's wikitext is never held beyond ``max_text_bytes``: past the cap the text is
dropped and the page is flagged ``too_large`` (its full size is still counted).

Format facts the reader relies on:

* Export schema 0.9, 0.10 and 0.11 differ in the namespace URI and in optional elements; only
  local element names are matched, so any URI (or none) works. In 0.11 extra revision slots sit
  in ``<content>`` elements; only the main slot (``<revision><text>``) is read.
* The XML declaration's encoding is honoured because expat is fed bytes: UTF-8, UTF-16 (with a
  BOM), ISO-8859-1 and US-ASCII natively, other single-byte encodings through Python codecs.
* ``<siteinfo>`` is optional (some exports have none); :attr:`WikiXmlReader.siteinfo` stays
  ``None`` then.
* A stream may end early (real dump parts are split after a ``</page>``, a download may be cut,
  a ``.bz2`` may be truncated) or contain garbage. Every complete page before the problem is
  yielded; the problem is recorded in :attr:`WikiXmlReader.cut` and never raised.
* XML 1.0 forbids the C0 control characters other than tab, newline and carriage return, and
  expat stops at the first one, which would lose every later page of the file. Dumps are UTF-8
  (MediaWiki writes nothing else), where those bytes can only stand for those characters, so
  they are removed before parsing and counted in :attr:`WikiXmlReader.removed_control_bytes`.
  Not for UTF-16 input (detected from its first bytes), where such bytes are half a character.

Dump date: ``<siteinfo>`` carries no date. The reader records the newest revision timestamp it
has seen (:attr:`WikiXmlReader.max_timestamp`); :func:`dump_date_from_name` reads the date that
Wikimedia puts in dump file names (``enwiki-20230801-pages-articles1.xml...``). The caller picks
the dump date as: an explicit option, else the file-name date, else the newest revision timestamp
found in a first pass over the file (the template-collection pass does it at no extra cost).
"""

from __future__ import annotations

import bz2
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import BinaryIO
from xml.parsers import expat

CHUNK_BYTES = 1 << 20  # bytes handed to expat per call: the reader's working set
FIELD_MAX_CHARS = 1 << 16  # cap on small fields (title, ids, siteinfo) against hostile input
DEFAULT_MAX_TEXT_BYTES = 4_000_000  # UTF-8 bytes of wikitext kept per page
# Bytes of the C0 controls XML 1.0 forbids (all but \t \n \r), for bytes.translate.
XML_FORBIDDEN_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))

# Cut reasons.
EMPTY = "empty"  # no byte at all
TRUNCATED = "truncated"  # the stream ended inside the document (no </mediawiki>)
PARSE_ERROR = "parse_error"  # malformed XML before the end of the stream
READ_ERROR = "read_error"  # the byte stream itself failed (truncated or corrupt .bz2/.gz)


@dataclass(frozen=True)
class SiteInfo:
    """The ``<siteinfo>`` header. ``namespaces`` maps the namespace key to its local name."""

    sitename: str = ""
    dbname: str = ""
    base: str = ""
    generator: str = ""
    case: str = ""
    namespaces: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One complete ``<page>`` with its last revision.

    ``page_id``/``ns`` are -1 when missing or not integers. ``text_bytes`` is the UTF-8 size of
    the full wikitext even when ``too_large`` (then ``text`` is ``""``). ``timestamp`` is the
    revision's ISO 8601 string as written in the dump (``2016-05-01T12:00:00Z``).
    """

    page_id: int
    ns: int
    title: str
    redirect: bool
    redirect_target: str
    revision_id: int
    timestamp: str
    text: str
    text_bytes: int
    too_large: bool


@dataclass(frozen=True)
class Cut:
    """Why and where a stream stopped before ``</mediawiki>``.

    ``offset`` is the byte offset in the decompressed XML, ``line``/``column`` expat's position
    (0 when unknown), ``pages_before`` the number of complete pages yielded before the cut and
    ``partial_title``/``partial_page_id`` the page that was open at the cut (``""``/-1 if none).
    """

    reason: str
    detail: str
    offset: int
    line: int
    column: int
    pages_before: int
    partial_title: str = ""
    partial_page_id: int = -1


def _to_int(text: str) -> int:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else -1


class WikiXmlReader:
    """Iterate the pages of one MediaWiki export read from a binary file object.

    After (or during) iteration: :attr:`siteinfo` (``None`` without ``<siteinfo>``),
    :attr:`cut` (``None`` when the document ended properly), :attr:`pages` (complete pages
    yielded), :attr:`max_timestamp` (newest revision timestamp seen, ``""`` if none),
    :attr:`bytes_read` (decompressed XML bytes consumed), :attr:`removed_control_bytes`
    (forbidden control bytes removed before parsing; see the module doc).
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
    ):
        self._file = fileobj
        self._max_text = max_text_bytes
        self._chunk = chunk_bytes
        self.siteinfo: SiteInfo | None = None
        self.cut: Cut | None = None
        self.pages = 0
        self.max_timestamp = ""
        self.bytes_read = 0
        self.removed_control_bytes = 0
        self.root = ""  # local name of the root element; "mediawiki" for a real export
        self._started = False

    # -- expat callbacks -------------------------------------------------------------------
    # The element stack holds local names; character data is collected only while a field of
    # interest is open (self._buf is a list), so text between elements costs nothing.

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition("}")[2]
        stack = self._stack
        parent = stack[-1] if stack else ""
        stack.append(local)
        if parent == "revision":
            if local == "text":
                self._open_field(self._max_text, text=True)
            elif local in ("id", "timestamp"):
                self._open_field(FIELD_MAX_CHARS)
        elif parent == "page":
            if local == "revision":
                self._rev = {}
            elif local in ("title", "ns", "id"):
                self._open_field(FIELD_MAX_CHARS)
            elif local == "redirect":
                self._page["redirect"] = attrs.get("title", "")
        elif local == "page":
            self._page = {}
            self._rev = {}
        elif parent == "namespaces" and local == "namespace":
            self._ns_key = _to_int(attrs.get("key", ""))
            self._open_field(FIELD_MAX_CHARS)
        elif parent == "siteinfo":
            self._open_field(FIELD_MAX_CHARS)
        elif local == "siteinfo":
            self._site = {"namespaces": {}}
        elif not parent:
            self.root = local

    def _open_field(self, limit: int, text: bool = False) -> None:
        self._buf = []
        self._buf_bytes = 0
        self._buf_limit = limit
        self._buf_over = False
        self._buf_is_text = text

    def _chars(self, data: str) -> None:
        buf = self._buf
        if buf is None:
            return
        # UTF-8 size: len() is exact for ASCII (an O(1) check in CPython); encode otherwise.
        n = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        self._buf_bytes += n
        if self._buf_bytes <= self._buf_limit:
            buf.append(data)
        elif not self._buf_over:
            self._buf_over = True
            buf.clear()  # past the cap nothing of this field is kept: memory stays bounded

    def _close_field(self) -> str:
        value = "".join(self._buf) if self._buf is not None else ""
        self._buf = None
        return value

    def _end(self, name: str) -> None:
        stack = self._stack
        local = stack.pop()
        parent = stack[-1] if stack else ""
        if parent == "revision":
            if local == "text":
                size, over = self._buf_bytes, self._buf_over
                self._rev["text"] = self._close_field()
                self._rev["text_bytes"] = size
                self._rev["too_large"] = over
            elif local in ("id", "timestamp"):
                self._rev[local] = self._close_field()
        elif parent == "page":
            if local in ("title", "ns", "id"):
                self._page[local] = self._close_field()
            elif local == "revision":
                # Several revisions (a history dump): the last one wins.
                self._page["rev"] = self._rev
        elif local == "page":
            self._finish_page()
        elif parent == "namespaces" and local == "namespace":
            self._site["namespaces"][self._ns_key] = self._close_field()
        elif parent == "siteinfo":
            if local in ("sitename", "dbname", "base", "generator", "case"):
                self._site[local] = self._close_field()
            else:
                self._close_field()
        elif local == "siteinfo":
            self.siteinfo = SiteInfo(**self._site)

    def _finish_page(self) -> None:
        page, rev = self._page, self._page.get("rev", {})
        stamp = rev.get("timestamp", "").strip()
        if stamp > self.max_timestamp:
            self.max_timestamp = stamp
        self._ready.append(
            Page(
                page_id=_to_int(page.get("id", "")),
                ns=_to_int(page.get("ns", "0")),
                title=page.get("title", "").strip(),
                redirect="redirect" in page,
                redirect_target=page.get("redirect", ""),
                revision_id=_to_int(rev.get("id", "")),
                timestamp=stamp,
                text=rev.get("text", ""),
                text_bytes=rev.get("text_bytes", 0),
                too_large=rev.get("too_large", False),
            )
        )
        self._page = None

    # -- driving loop -----------------------------------------------------------------------

    def _record_cut(self, reason: str, detail: str, parser) -> None:
        page = self._page or {}
        self.cut = Cut(
            reason=reason,
            detail=detail,
            offset=self.bytes_read if parser is None else max(parser.CurrentByteIndex, 0),
            line=0 if parser is None else parser.CurrentLineNumber,
            column=0 if parser is None else parser.CurrentColumnNumber,
            pages_before=self.pages,
            partial_title=page.get("title", "").strip(),
            partial_page_id=_to_int(page.get("id", "")),
        )

    def __iter__(self) -> Iterator[Page]:
        if self._started:
            raise RuntimeError("a WikiXmlReader can be iterated once")
        self._started = True
        parser = expat.ParserCreate(namespace_separator="}")
        parser.buffer_text = True  # one callback per text run, not per line
        parser.buffer_size = 1 << 18
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        self._stack: list[str] = []
        self._ready: list[Page] = []
        self._page: dict | None = None
        self._rev: dict = {}
        self._buf: list[str] | None = None
        filtering = True
        while True:
            try:
                chunk = self._file.read(self._chunk)
            except (EOFError, OSError, ValueError) as exc:
                # A truncated .bz2/.gz raises EOFError; corrupt compressed data OSError.
                yield from self._drain()
                self._record_cut(READ_ERROR, f"{type(exc).__name__}: {exc}", None)
                return
            final = not chunk
            if self.bytes_read == 0 and chunk:
                filtering = not _utf16(chunk)
            if filtering and chunk:
                clean = chunk.translate(None, XML_FORBIDDEN_BYTES)
                self.removed_control_bytes += len(chunk) - len(clean)
            else:
                clean = chunk
            try:
                parser.Parse(clean, final)
            except expat.ExpatError as exc:
                yield from self._drain()
                if final and self.bytes_read == 0:
                    self._record_cut(EMPTY, "the file is empty", parser)
                else:
                    reason = TRUNCATED if final else PARSE_ERROR
                    self._record_cut(reason, str(exc), parser)
                return
            self.bytes_read += len(chunk)
            yield from self._drain()
            if final:
                return

    def _drain(self) -> Iterator[Page]:
        ready, self._ready = self._ready, []
        for page in ready:
            self.pages += 1
            yield page


def _utf16(head: bytes) -> bool:
    """Whether a document starting with ``head`` is UTF-16 (a BOM, or ``<`` as two bytes)."""
    return head[:2] in (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")


def read_pages(fileobj: BinaryIO, max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES) -> Iterator[Page]:
    """Shorthand for ``iter(WikiXmlReader(fileobj, max_text_bytes))`` when the cut is not needed."""
    return iter(WikiXmlReader(fileobj, max_text_bytes))


_NAME_DATE = re.compile(r"(?:^|[-_/])(20\d{2})(\d{2})(\d{2})(?=[-_.])")


def dump_date_from_name(name: str) -> datetime | None:
    """The ``YYYYMMDD`` date Wikimedia puts in dump file names, at 00:00 UTC, or ``None``."""
    match = _NAME_DATE.search(name.rsplit("/", 1)[-1])
    if not match:
        return None
    try:
        return datetime(*map(int, match.groups()), tzinfo=timezone.utc)
    except ValueError:
        return None


def parse_timestamp(stamp: str) -> datetime | None:
    """A revision timestamp (``2016-05-01T12:00:00Z``) as an aware UTC datetime, or ``None``."""
    try:
        return datetime.strptime(stamp.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def open_local(path: str) -> BinaryIO:
    """Open a local ``.xml``, ``.xml.bz2`` (multistream too) or ``.xml.gz`` file as bytes."""
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")
