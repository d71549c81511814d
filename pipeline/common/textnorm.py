"""The text model shared by every source: NFC, single spaces, one paragraph per line.

Sources produce paragraphs; these functions normalise them, unwrap hard-wrapped lines, drop
section headings (unless asked to keep them) and join the result with ``"\\n"``.
"""

from __future__ import annotations

import re
import unicodedata

# Every Unicode space separator, tab, and the line/paragraph separators become one space.
_SPACES = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
# Zero-width characters and the BOM carry no text.
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
# Control characters other than whitespace.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*\n+")
_HEADING_WORD = re.compile(
    r"^(chapter|book|part|section|volume|stave|letter|act|scene|canto|appendix|preface|"
    r"introduction|contents|epilogue|prologue)\b",
    re.IGNORECASE,
)
_SENTENCE_END = (".", "!", "?", '"', "'", "\u201d", "\u2019", ")", "]", ":", ";", "\u3002")
HEADING_MAX_WORDS = 12


def normalize(text: str) -> str:
    """NFC, invisible and control characters removed, whitespace runs -> one space, stripped."""
    if not text.isascii():  # NFC and invisible characters only concern non-ASCII text
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        text = _INVISIBLE.sub("", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub(" ", text)
    # str.split() splits on exactly the characters _SPACES matches (str.isspace()).
    return " ".join(text.split())


def unwrap(text: str) -> list[str]:
    """Split hard-wrapped text into paragraphs.

    Paragraphs are separated by one or more blank lines; the lines inside a paragraph are
    joined with a space. ``\\r\\n`` and ``\\r`` count as line ends. Returns normalised,
    non-empty paragraphs in order.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for block in _BLANK_LINES.split(text):
        para = normalize(block.replace("\n", " "))
        if para:
            out.append(para)
    return out


def is_heading(paragraph: str) -> bool:
    """Heuristic: a short line that is not a sentence, or a "CHAPTER IV."-style title.

    A heading has at most :data:`HEADING_MAX_WORDS` words and either does not end with
    sentence punctuation, starts with a structural word (chapter, book, part, stave...), or is
    written in capitals.
    """
    words = paragraph.split()
    if not words or len(words) > HEADING_MAX_WORDS:
        return False
    if _HEADING_WORD.match(paragraph):
        return True
    letters = [c for c in paragraph if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) > 1:
        return True
    return not paragraph.endswith(_SENTENCE_END)


def join_paragraphs(paragraphs: list[str], keep_headings: bool = False) -> str:
    """Normalise paragraphs, drop headings unless ``keep_headings``, join with ``"\\n"``."""
    kept = []
    for para in paragraphs:
        para = normalize(para)
        if para and (keep_headings or not is_heading(para)):
            kept.append(para)
    return "\n".join(kept)


def word_count(text: str) -> int:
    """Whitespace-separated words in ``text``."""
    return len(text.split())
