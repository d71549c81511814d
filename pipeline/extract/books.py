"""Books: one plain-text file -> one :class:`~pipeline.common.records.Document`.

Three steps, each a pure function:

1. :func:`decode_text` turns raw bytes into text (UTF-8 with stray bytes repaired one by one,
   or a whole-file legacy fallback), or refuses binary garbage.
2. :func:`strip_book` (or :func:`strip_gutenberg`) removes the Project Gutenberg header,
   footer, licence and the credit lines that sit inside the START/END markers.
3. :func:`read_book` applies the text model (:mod:`pipeline.common.textnorm`): hard wraps unwrapped,
   headings dropped unless asked, NFC, one paragraph per line.

Decoding rule (why not "try UTF-8, else re-decode everything"): one stray cp1252 byte in a
UTF-8 book would otherwise turn every curly quote of the book into mojibake. The bytes are
decoded as UTF-8 with ``surrogateescape``, which maps each invalid byte, one by one, to a lone
surrogate U+DC80..U+DCFF (valid UTF-8 never yields one). Let ``bad`` be those bytes and
``multi`` the correctly decoded non-ASCII characters. If ``bad > multi`` the file is clearly not
UTF-8 (a legacy file has almost no valid multi-byte sequences) and the whole file is decoded as
windows-1252; otherwise each bad byte is repaired alone. Both use the same byte table: cp1252,
with latin-1 for the 5 bytes cp1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D), as WHATWG's
windows-1252 does; so ASCII text with a few high bytes gives the same result either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from pipeline.common import textnorm
from pipeline.common.records import BOOKS, REJECTED, Document, Dropped, doc_id

UTF8_BOM = b"\xef\xbb\xbf"
# A NUL in the first 8 KiB marks a binary file (the rule git and grep use).
BINARY_SNIFF_BYTES = 8192
# C0 control bytes except \t \n \v \f \r, plus DEL: plain text (of any legacy encoding) has
# almost none; binary data has about 11%. UTF-16 without a BOM has NULs and counts as binary.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
# More than 1% control bytes is binary.
MAX_CONTROL_RATIO = 0.01
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _byte_char(b: int) -> str:
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:  # the 5 bytes cp1252 leaves undefined
        return bytes([b]).decode("latin-1")


# Index b - 0x80 -> the character that byte b stands for in a legacy (windows-1252) file.
_LEGACY = [_byte_char(b) for b in range(0x80, 0x100)]
_LEGACY_TABLE = {0x80 + i: c for i, c in enumerate(_LEGACY)}  # str.translate over latin-1
_ESCAPED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class DecodeStats:
    """How a file's bytes became text.

    ``encoding``: ``utf-8``, ``utf-8-sig`` (BOM), ``utf-16`` (BOM) or ``windows-1252`` (whole-file
    fallback). ``invalid_bytes``: bytes that were not valid UTF-8. ``repaired_bytes``: of those,
    the ones repaired one by one inside a UTF-8 file (0 after a whole-file fallback).
    """

    encoding: str
    invalid_bytes: int = 0
    repaired_bytes: int = 0


class BinaryFileError(ValueError):
    """The bytes are not text (NUL bytes or too many control bytes)."""


def _repair(match: re.Match[str]) -> str:
    return _LEGACY[ord(match.group()) - 0xDC80]


def decode_text(raw: bytes) -> tuple[str, DecodeStats]:
    """Decode a text file's bytes; see the module docstring for the rule.

    Returns the text (BOM removed, line ends untouched) and its :class:`DecodeStats`.
    Raises :class:`BinaryFileError` for binary data, :class:`UnicodeDecodeError` for a UTF-16
    file (BOM) that is not valid UTF-16.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), DecodeStats("utf-16")
    if b"\x00" in raw[:BINARY_SNIFF_BYTES]:
        raise BinaryFileError("NUL bytes")
    controls = len(raw) - len(raw.translate(None, _CONTROL_BYTES))
    if raw and controls / len(raw) > MAX_CONTROL_RATIO:
        raise BinaryFileError(f"{controls} control bytes in {len(raw)}")
    encoding = "utf-8"
    if raw.startswith(UTF8_BOM):
        raw, encoding = raw[len(UTF8_BOM) :], "utf-8-sig"
    text = raw.decode("utf-8", errors="surrogateescape")
    ascii_bytes = len(raw.translate(None, _HIGH_BYTES))
    if ascii_bytes == len(text):  # every byte decoded to one character: plain ASCII
        return text, DecodeStats(encoding)
    bad = len(_ESCAPED.findall(text))
    if bad == 0:
        return text, DecodeStats(encoding)
    multi = len(text) - ascii_bytes - bad
    if bad > multi:
        legacy = raw.decode("latin-1").translate(_LEGACY_TABLE)
        return legacy, DecodeStats("windows-1252", invalid_bytes=bad)
    repaired, n = _ESCAPED.subn(_repair, text)
    return repaired, DecodeStats(encoding, invalid_bytes=bad, repaired_bytes=n)


# ---- Project Gutenberg boilerplate ---------------------------------------------------------

_FLAGS = re.IGNORECASE | re.MULTILINE
# "*** START OF THIS PROJECT GUTENBERG EBOOK X ***" (pre-2020), "*** START OF THE PROJECT
# GUTENBERG EBOOK X ***" (current), "***START OF THE PROJECT GUTENBERG ETEXT", and the 1990s
# "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*" that closes old headers.
_START = re.compile(
    r"^[ \t]*(?:\*{3}[ \t]*START OF (?:THIS|THE) PROJECT GUTENBERG E-?(?:BOOK|TEXT)"
    r"|\*END\*[ \t]*THE SMALL PRINT)[^\n]*$",
    _FLAGS,
)
# The earliest of these after START ends the book: the END marker, the "End of (the) Project
# Gutenberg('s) EBook of ..." line that precedes it, or the licence if both are missing.
_END = re.compile(
    r"^[ \t]*(?:\*{3}[ \t]*END OF (?:THIS|THE) PROJECT GUTENBERG E-?(?:BOOK|TEXT)"
    r"|End of (?:the |this )?Project Gutenberg"
    r"|\*{3}[ \t]*START: FULL LICENSE)",
    _FLAGS,
)
# Credits at the top of the body ("Produced by Judith Boss", "Transcribed from the 1915 edition
# by ..."): dropped when among the first CREDIT_BLOCKS blocks after START.
_CREDIT = re.compile(
    r"^(?:produced by|e-?text prepared by|transcribed (?:from|by)|prepared by"
    r"|this e-?(?:text|book) was (?:produced|prepared|created))",
    re.IGNORECASE,
)
CREDIT_BLOCKS = 4
# Anything in the body that names Project Gutenberg is its boilerplate, not the book's text.
_PG_MENTION = re.compile(r"project\s+gutenberg", re.IGNORECASE)
_BLOCK_SPLIT = re.compile(r"\n[ \t]*\n")
_TITLE = re.compile(r"Title:[ \t]*(\S[^\n]*)((?:\n[ \t]+\S[^\n]*)*)")
# "[Illustration: colophon]" placeholders carry no text.
_ILLUSTRATION = re.compile(r"^\[Illustration[^\]]*\]$", re.IGNORECASE)


@dataclass(frozen=True)
class StripStats:
    """What :func:`strip_book` found: ``markers`` is ``both``, ``start``, ``end`` or ``none``;
    ``boilerplate_blocks`` counts credit/Gutenberg blocks dropped from inside the markers."""

    markers: str
    boilerplate_blocks: int = 0
    title: str = ""


def _start_end(text: str) -> int | None:
    """Offset just after the START marker, following a marker wrapped onto further lines."""
    m = _START.search(text)
    if m is None:
        return None
    end = m.end()
    if m.group().lstrip().startswith("*END*") or m.group().rstrip().endswith("***"):
        return end
    # "*** START OF ... EBOOK THE ADVENTURES OF SHERLOCK\nHOLMES ***": the closing stars are on
    # one of the next two non-blank lines; a blank line means there is no continuation.
    pos = end
    for _ in range(2):
        nl = text.find("\n", pos + 1)
        line = text[pos + 1 : nl if nl >= 0 else len(text)]
        if not line.strip():
            break
        pos = nl if nl >= 0 else len(text)
        if line.rstrip().endswith("***"):
            return pos
    return end


def _title(header: str) -> str:
    m = _TITLE.search(header)
    if m is None:
        return ""
    return textnorm.normalize(m.group(1) + " " + m.group(2))


def strip_book(text: str) -> tuple[str, StripStats]:
    """Remove Project Gutenberg header, footer, licence and credits.

    ``text`` may use CRLF or LF. Returns the body (LF line ends, blocks separated by a blank
    line) and :class:`StripStats`. Without any marker the text is returned whole (only blocks
    naming Project Gutenberg are removed; there are none in a non-Gutenberg book).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = _start_end(text)
    end_m = _END.search(text, start or 0)
    header = text[:start] if start is not None else ""
    body = text[start or 0 : end_m.start() if end_m else len(text)]
    markers = {(True, True): "both", (True, False): "start", (False, True): "end"}.get(
        (start is not None, end_m is not None), "none"
    )
    kept, dropped = [], 0
    for block in _BLOCK_SPLIT.split(body):
        stripped = block.strip()
        if not stripped:
            continue
        credit = start is not None and len(kept) + dropped < CREDIT_BLOCKS
        if (
            _PG_MENTION.search(stripped)
            or (credit and _CREDIT.match(stripped))
            or _ILLUSTRATION.match(stripped)
        ):
            dropped += 1
            continue
        kept.append(block)
    return "\n\n".join(kept), StripStats(markers, dropped, _title(header))


def strip_gutenberg(text: str) -> tuple[str, bool]:
    """:func:`strip_book` without the stats: ``(body, any_marker_found)``."""
    body, stats = strip_book(text)
    return body, stats.markers != "none"


# ---- Headings that the generic text model misses ------------------------------------------

_STRUCTURE = (
    r"(?:chapter|book|part|stave|letter|volume|section|canto|act|scene|appendix|preface"
    r"|introduction|contents|epilogue|prologue)"
)
# One line of a table of contents: "CHAPTER 1. Loomings.", "I. A Scandal in Bohemia",
# "13.  HOW MY SHORE ADVENTURE BEGAN . . . 82", "THE GOLDEN BIRD", "Chapter IV The Preparation".
_TOC_HEAD = re.compile(rf"{_STRUCTURE}\b|(?:[IVXLC]+|\d+)\.\s", re.IGNORECASE)
_TOC_TAIL = re.compile(r"(?:(?:\.\s*){2,}|\s)\d+$")  # a page number
# "CHAPTER 56. Of the Less Erroneous Pictures of Whales, and the True Pictures of Whaling
# Scenes.": a numbered heading, too long for textnorm's word limit.
_NUMBERED_HEADING = re.compile(rf"^{_STRUCTURE}\s+(?:\d+|[IVXLC]+)\b", re.IGNORECASE)
NUMBERED_HEADING_MAX_WORDS = 25
# "I." or "XII" alone: a section number.
_NUMBER_ONLY = re.compile(r"^(?:[IVXLCDM]+|\d+)[.:]?$")
# Share of lines that must look like contents lines (Grimm's list has one lowercase entry).
TOC_MIN_FRACTION = 0.9


def _toc_line(line: str) -> bool:
    return (
        bool(_TOC_HEAD.match(line))
        or bool(_TOC_TAIL.search(line, max(0, len(line) - 40)))
        or (line.isupper() and len(line) > 2)
    )


def _toc_block(lines: list[str]) -> bool:
    """Two or more lines, at least :data:`TOC_MIN_FRACTION` of them contents-like."""
    if len(lines) < 2:
        return False
    allowed = int(len(lines) * (1 - TOC_MIN_FRACTION))
    misses = 0
    for line in lines:  # stops at the first misses: prose blocks cost one or two lines
        if not _toc_line(line):
            misses += 1
            if misses > allowed:
                return False
    return True


def _heading_block(para: str) -> bool:
    if _NUMBER_ONLY.match(para):
        return True
    return bool(_NUMBERED_HEADING.match(para)) and len(para.split()) <= NUMBERED_HEADING_MAX_WORDS


def paragraphs(body: str, keep_headings: bool = False) -> list[str]:
    """Blank-line-separated blocks of ``body`` -> unwrapped paragraphs (not yet filtered).

    A block of two or more lines of which at least :data:`TOC_MIN_FRACTION` look like
    table-of-contents lines is split into one paragraph per line (``keep_headings``) or dropped;
    a numbered chapter heading of up to :data:`NUMBERED_HEADING_MAX_WORDS` words and a bare
    section number ("IV.") are dropped unless ``keep_headings``. Everything
    else is unwrapped by :func:`pipeline.common.textnorm.unwrap`; short headings are left for
    :func:`pipeline.common.textnorm.join_paragraphs` to drop.
    """
    out: list[str] = []
    for block in _BLOCK_SPLIT.split(body):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if _toc_block(lines):
            if keep_headings:
                out.extend(textnorm.normalize(line) for line in lines)
            continue
        paras = textnorm.unwrap(block)
        if not keep_headings and len(paras) == 1 and _heading_block(paras[0]):
            continue
        out.extend(paras)
    return out


# ---- One book -> one document --------------------------------------------------------------


@dataclass(frozen=True)
class BookOptions:
    """``keep_headings``: keep chapter titles and other heading lines. ``max_bytes``: larger
    files are rejected as ``too_large`` (no book is 64 MiB; a file that big is a mistake)."""

    keep_headings: bool = False
    max_bytes: int = 64 * 2**20


@dataclass(frozen=True)
class BookStats:
    """Per-book facts for the run report; see :func:`counters`."""

    decode: DecodeStats | None
    strip: StripStats | None


@dataclass(frozen=True)
class BookResult:
    """What :func:`read_book` returns: the record and the facts behind it."""

    record: Document | Dropped
    stats: BookStats


def read_book(raw: bytes, relpath: str, options: BookOptions = BookOptions()) -> BookResult:
    """Bytes of one book file -> one :class:`Document`, or a :class:`Dropped` with a reason.

    ``relpath`` is the file's ``/``-separated path relative to the input root (the id key).
    Rejections: ``empty`` (no bytes, or no text after stripping), ``binary``, ``too_large``,
    ``decode_error`` (a UTF-16 BOM before invalid UTF-16).
    """
    ident = doc_id(BOOKS, relpath, "")
    stem = PurePosixPath(relpath).stem

    def drop(reason: str, detail: str, stats: BookStats, title: str = stem) -> BookResult:
        return BookResult(Dropped(ident, BOOKS, relpath, title, REJECTED, reason, detail), stats)

    if len(raw) > options.max_bytes:
        return drop("too_large", f"{len(raw)} bytes > {options.max_bytes}", BookStats(None, None))
    if not raw.strip():
        return drop("empty", f"{len(raw)} bytes, no text", BookStats(None, None))
    try:
        text, dstats = decode_text(raw)
    except BinaryFileError as exc:
        return drop("binary", str(exc), BookStats(None, None))
    except UnicodeDecodeError as exc:
        return drop("decode_error", str(exc), BookStats(None, None))
    body, sstats = strip_book(text)
    stats = BookStats(dstats, sstats)
    title = sstats.title or stem
    paras = paragraphs(body, options.keep_headings)
    # Equal to textnorm.join_paragraphs(paras, keep_headings): ``paras`` are already normalised
    # (normalize is idempotent), so only the heading filter is left; this halves the time.
    out = "\n".join(p for p in paras if options.keep_headings or not textnorm.is_heading(p))
    if not out:
        return drop("empty", "no text after removing boilerplate and headings", stats, title)
    return BookResult(Document(ident, BOOKS, relpath, title, out), stats)


def book_document(
    raw: bytes, relpath: str, options: BookOptions = BookOptions()
) -> tuple[Document | Dropped, dict[str, int]]:
    """:func:`read_book` for the extraction stage: ``(record, counters(stats))``."""
    result = read_book(raw, relpath, options)
    return result.record, counters(result.stats)


def counters(stats: BookStats) -> dict[str, int]:
    """Beam counter increments for one book (names are stable report keys).

    ``books_repaired_bytes``, ``books_invalid_bytes``, ``books_encoding_<name>`` (1 per book;
    ``utf_8``, ``utf_8_sig``, ``utf_16``, ``windows_1252``),
    ``books_no_gutenberg_markers`` (kept whole), ``books_boilerplate_blocks``.
    """
    out: dict[str, int] = {}
    if stats.decode is not None:
        out["books_encoding_" + stats.decode.encoding.replace("-", "_")] = 1
        out["books_invalid_bytes"] = stats.decode.invalid_bytes
        out["books_repaired_bytes"] = stats.decode.repaired_bytes
    if stats.strip is not None:
        out["books_no_gutenberg_markers"] = int(stats.strip.markers == "none")
        out["books_boilerplate_blocks"] = stats.strip.boilerplate_blocks
    return out
