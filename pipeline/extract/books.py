"""Books: one plain-text file -> one :class:`~pipeline.common.records.Document`.

Three steps, each a pure function:

1. :func:`pipeline.extract.textdecode.decode_text` turns raw bytes into text (UTF-8 with stray
   bytes repaired one by one, or a whole-file legacy fallback), or refuses binary garbage.
2. :func:`pipeline.extract.gutenberg.strip_book` removes the Project Gutenberg header, footer,
   licence and the credit lines that sit inside the START/END markers.
3. :func:`paragraphs` (here) drops tables of contents and numbered chapter headings that the
   generic text model misses, then :func:`read_book` applies the text model
   (:mod:`pipeline.common.textnorm`): hard wraps unwrapped, headings dropped unless asked, NFC,
   one paragraph per line.

:func:`read_book` runs the three and counts what they found (:func:`counters`, for the run
report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from pipeline.common import textnorm
from pipeline.common.records import BOOKS, REJECTED, Document, Dropped, doc_id
from pipeline.extract.gutenberg import BLOCK_SPLIT, StripStats, strip_book
from pipeline.extract.textdecode import BinaryFileError, DecodeStats, decode_text

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
    for block in BLOCK_SPLIT.split(body):
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
        return drop("too_large", f"more than {options.max_bytes} bytes", BookStats(None, None))
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
