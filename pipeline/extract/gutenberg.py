"""Project Gutenberg boilerplate: a book's text -> its body (:func:`strip_book`).

Removes the header and footer outside the START/END markers (every marker form from the 1990s
to now), the licence, and the credit lines, "Project Gutenberg" blocks and illustration
placeholders that sit inside the markers; the title comes from the header's ``Title:`` line.
Works on text (``str``), line ends CRLF or LF; the body comes back with LF line ends and
blocks separated by one blank line (:data:`BLOCK_SPLIT`), as
:func:`pipeline.extract.books.paragraphs` reads it. A book without markers is kept whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.common import textnorm

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
# A block in the body that names Project Gutenberg is its boilerplate, not the book's text;
# but not a block longer than this (characters): a file without paragraph breaks is one block,
# and dropping it for one mention would drop the whole book (boilerplate blocks are short).
_PG_MENTION = re.compile(r"project\s+gutenberg", re.IGNORECASE)
PG_BLOCK_MAX_CHARS = 4000
# Blocks of a text: separated by a line that is empty or holds only spaces and tabs.
BLOCK_SPLIT = re.compile(r"\n[ \t]*\n")
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
    for block in BLOCK_SPLIT.split(body):
        stripped = block.strip()
        if not stripped:
            continue
        credit = start is not None and len(kept) + dropped < CREDIT_BLOCKS
        if (
            (len(stripped) <= PG_BLOCK_MAX_CHARS and _PG_MENTION.search(stripped))
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
