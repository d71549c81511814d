"""Books on real Project Gutenberg files: decoding, boilerplate stripping, the text model.

Expected values come from the books themselves and from ../shared/corpora/books/books.tsv
(title, encoding, marker line numbers measured when the corpus was assembled; bundled as
corpus/testdata/books/books.tsv), not from the code under test. The books a test names are
bundled; the checks run on every book also run on all 17 of ../shared (marked shared).
"""

from __future__ import annotations

import bz2
import csv
import functools
import gzip
import random
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from pipeline.common import textnorm
from pipeline.common.records import BOOKS, REJECTED, Document, Dropped, doc_id
from pipeline.extract import books, textdecode
from pipeline.extract import gutenberg as gb
from tests.conftest import CORPUS, SHARED, TESTDATA, book_bytes, gutenberg

SHARED_BOOKS = [
    "11-0.txt", "46.txt", "76.txt", "84-0.txt", "98.txt", "120.txt", "158.txt", "174.txt",
    "219.txt", "345-8.txt", "1232.txt", "1342.txt", "1661.txt", "1952-0.txt", "2591-0.txt",
    "2701-0.txt", "5200.txt",
]  # fmt: skip
REPO_BOOKS = ["11-0.txt", "1661.txt", "1952-0.txt", "345-8.txt"]
ALL = [
    pytest.param(SHARED / "books" / "gutenberg" / n, id=f"shared/{n}", marks=pytest.mark.shared)
    for n in SHARED_BOOKS
] + [pytest.param(CORPUS / "books" / n, id=f"repo/{n}") for n in REPO_BOOKS]


@functools.cache
def manifest() -> dict[str, dict[str, str]]:
    with open(TESTDATA / "books" / "books.tsv", encoding="utf-8", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


@functools.cache
def processed(path: Path) -> books.BookResult:
    assert path.is_file(), f"{path} is missing"
    return books.read_book(book_bytes(path), path.name.removesuffix(".bz2"))


def record(raw: bytes, relpath: str, options: books.BookOptions | None = None):
    return books.read_book(raw, relpath, options or books.BookOptions()).record


def body_lines(path: Path) -> list[str]:
    """Lines strictly between the START and END marker lines listed in books.tsv."""
    row = manifest()[path.name.removesuffix(".bz2")]
    codec = {"latin-1": "latin-1"}.get(row["actual_encoding"], "utf-8-sig")
    lines = book_bytes(path).decode(codec).splitlines()
    start, end = int(row["start_marker_line"]), int(row["end_marker_line"])
    assert "START OF THIS PROJECT GUTENBERG" in lines[start - 1]
    assert "END OF THIS PROJECT GUTENBERG" in lines[end - 1]
    return lines[start : end - 1]


@pytest.mark.parametrize("path", ALL)
def test_boilerplate_gone_and_metadata(path: Path) -> None:
    result = processed(path)
    doc = result.record
    assert isinstance(doc, Document)
    for junk in ("Project Gutenberg", "PROJECT GUTENBERG", "Produced by", "*** START", "*** END"):
        assert junk not in doc.text
    assert "gutenberg" not in doc.text.lower()
    assert "FULL LICENSE" not in doc.text and "Foundation" not in doc.text
    row = manifest()[path.name]
    assert doc.title.startswith(row["title"])
    assert doc.id == doc_id(BOOKS, path.name, "") and doc.source == BOOKS
    assert result.stats.strip.markers == "both"
    expected_encoding = {
        ("utf-8", "True"): "utf-8-sig",
        ("utf-8", "False"): "utf-8",
        ("ascii", "False"): "utf-8",
        ("latin-1", "False"): "windows-1252",
    }[row["actual_encoding"], row["utf8_bom"]]
    assert result.stats.decode.encoding == expected_encoding


@pytest.mark.parametrize("path", ALL)
def test_body_kept_and_nothing_added(path: Path) -> None:
    """Every output word comes from between the markers, and >= 95% of those words survive."""
    body = Counter(w for line in body_lines(path) for w in line.split())
    out = Counter(processed(path).record.text.split())
    assert not out - body, f"words not in the body: {list((out - body).items())[:10]}"
    kept = sum((out & body).values()) / sum(body.values())
    assert kept >= 0.95, kept


def _prose(line: str) -> bool:
    lower = sum(c.islower() for c in line)
    upper = sum(c.isupper() for c in line)
    return len(line.split()) >= 6 and lower > 2 * upper and ". . ." not in line


@pytest.mark.parametrize("path", ALL)
def test_one_paragraph_per_line_nfc(path: Path) -> None:
    """Two consecutive prose lines of the source sit on one output line, joined by a space."""
    text = processed(path).record.text
    lines = body_lines(path)
    # Blocks that name Project Gutenberg, credits and contents lines are removed on purpose.
    skip: set[int] = set(range(12))
    block: list[int] = []
    for i, line in enumerate([*lines, ""]):
        if line.strip():
            block.append(i)
            continue
        if any("gutenberg" in lines[j].lower() for j in block):
            skip.update(block)
        block = []
    toc = re.compile(r"^\s*(chapter|stave|[IVXLC]+\.)", re.IGNORECASE)
    pairs = [
        (a, b)
        for i, (a, b) in enumerate(zip(lines, lines[1:]))
        if i not in skip and _prose(a) and _prose(b) and not toc.match(a) and not toc.match(b)
    ]
    assert len(pairs) > 100
    pairs = pairs[:: max(1, len(pairs) // 400)]  # ~400 spread over the book keeps this fast
    missing = [p for p in pairs if " ".join(f"{p[0]} {p[1]}".split()) not in text]
    assert not missing, missing[:3]
    assert unicodedata.is_normalized("NFC", text)
    for line in text.split("\n"):
        assert line and line == line.strip() and "  " not in line and "\r" not in line


FIRST_AND_LAST = {
    "1342.txt": ("It is a truth universally acknowledged", "had been the means of uniting them."),
    "158.txt": (
        "Emma Woodhouse, handsome, clever, and rich",
        "the perfect happiness of the union.",
    ),
    "11-0.txt": ("Alice was beginning to get very tired", "and the happy summer days."),
    "98.txt": ("It was the best of times", 'rest that I go to than I have ever known."'),
    "219.txt": ("The Nellie, a cruising yawl", "into the heart of an immense darkness."),
    "5200.txt": ("One morning, when Gregor Samsa woke", "stretch out her young body."),
    "1952-0.txt": ("It is very seldom that mere ordinary", "had to creep over him every time!"),
}


@pytest.mark.parametrize("name", sorted(FIRST_AND_LAST))
def test_first_and_last_real_text(name: str) -> None:
    """The book starts near its first sentence (title/chapter lines dropped) and ends with it."""
    first, last = FIRST_AND_LAST[name]
    text = processed(gutenberg(name)).record.text
    assert 0 <= text.find(first) < 100, text[:300]
    assert text.endswith(last), text[-300:]


def test_dracula_latin1() -> None:
    path = gutenberg("345-8.txt")
    raw = book_bytes(path)
    result = processed(path)
    assert "calèche" in result.record.text and "cal\ufffdche" not in result.record.text
    assert result.stats.decode.invalid_bytes == sum(b >= 0x80 for b in raw)
    assert result.stats.decode.repaired_bytes == 0  # whole-file fallback, not repair


def _swap_markers(raw: bytes, start: bytes, end: bytes) -> bytes:
    out = re.sub(rb"\*\*\* START OF THIS PROJECT GUTENBERG EBOOK ([^*\r\n]+) \*\*\*", start, raw)
    out = re.sub(rb"\*\*\* END OF THIS PROJECT GUTENBERG EBOOK ([^*\r\n]+) \*\*\*", end, out)
    assert b"START OF THIS PROJECT" not in out and b"END OF THIS PROJECT" not in out
    return out


def test_current_marker_forms_give_the_same_book() -> None:
    path = gutenberg("1342.txt")
    raw = book_bytes(path)
    # Post-2020 files: new header wording, "THE" markers (sometimes only the number).
    modern = _swap_markers(
        raw,
        rb"*** START OF THE PROJECT GUTENBERG EBOOK \1 ***",
        rb"*** END OF THE PROJECT GUTENBERG EBOOK \1 ***",
    )
    modern = modern.replace(b"The Project Gutenberg EBook of", b"The Project Gutenberg eBook of")
    numbered = _swap_markers(
        raw,
        b"*** START OF THE PROJECT GUTENBERG EBOOK 1342 ***",
        b"*** END OF THE PROJECT GUTENBERG EBOOK 1342 ***",
    )
    old = _swap_markers(
        raw, b"*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*", b""
    )
    lf = raw.replace(b"\r\n", b"\n")
    expected = processed(path).record
    for variant in (modern, numbered, old, lf):
        doc = record(variant, "1342.txt")
        assert doc.text == expected.text and doc.title == "Pride and Prejudice"


def test_start_marker_wrapped_onto_two_lines() -> None:
    path = gutenberg("1661.txt")
    raw = book_bytes(path)
    marker = b"*** START OF THIS PROJECT GUTENBERG EBOOK THE ADVENTURES OF SHERLOCK HOLMES ***"
    wrapped = raw.replace(marker, marker.replace(b" HOLMES", b"\r\nHOLMES"))
    assert wrapped != raw
    doc = record(wrapped, "1661.txt")
    assert "HOLMES ***" not in doc.text
    assert doc.text == processed(path).record.text


def test_empty_file_rejected() -> None:
    for raw in (b"", b"\r\n \n\t\n"):
        rec = record(raw, "shelf/empty.txt")
        assert isinstance(rec, Dropped)
        assert (rec.kind, rec.reason, rec.source) == (REJECTED, "empty", BOOKS)
        assert rec.id == doc_id(BOOKS, "shelf/empty.txt", "") and rec.title == "empty"


def test_binary_garbage_rejected() -> None:
    book = book_bytes(gutenberg("1661.txt"))
    garbage = [
        random.Random(0).randbytes(200_000),
        (CORPUS / "wikipedia" / "enwiki-table-markup.xml.bz2").read_bytes(),
        gzip.compress(book, mtime=0),
        bz2.compress(book),
        b"MZ\x90\x00\x03" + bytes(range(256)) * 64,  # executable-like header
    ]
    for raw in garbage:
        rec = record(raw, "garbage.txt")
        assert isinstance(rec, Dropped) and rec.reason == "binary", rec


def test_book_without_markers_kept_and_counted() -> None:
    path = gutenberg("1342.txt")
    lines = body_lines(path)
    end = next(i for i, line in enumerate(lines) if line.startswith("End of the Project"))
    # A plain-text book as a user might have it: no Gutenberg header, credits or footer.
    raw = "\r\n".join(lines[10:end]).encode()
    assert b"START OF" not in raw and b"Produced by" not in raw
    result = books.read_book(raw, "mine/pride.txt")
    assert isinstance(result.record, Document)
    assert result.record.text == processed(path).record.text
    assert result.record.title == "pride"
    assert result.stats.strip.markers == "none"
    rec, counts = books.book_document(raw, "mine/pride.txt")  # the extraction stage's call
    assert rec == result.record and counts["books_no_gutenberg_markers"] == 1
    assert books.counters(processed(path).stats)["books_no_gutenberg_markers"] == 0
    assert books.counters(processed(path).stats)["books_encoding_utf_8"] == 1


INSERTED = [(b"\xe9", "é"), (b"\xe8", "è"), (b"\x92", "\u2019"), (b"\xfc", "ü"), (b"\x81", "\x81")]


def _insert(raw: bytes) -> tuple[bytes, list[int]]:
    """Insert the INSERTED bytes after spaces spread over ``raw``; return bytes and offsets."""
    spaces = [m.end() for m in re.finditer(rb" ", raw)]
    cuts = [spaces[(i + 1) * len(spaces) // (len(INSERTED) + 1)] for i in range(len(INSERTED))]
    pieces, prev = [], 0
    for cut, (byte, _) in zip(cuts, INSERTED):
        pieces += [raw[prev:cut], byte]
        prev = cut
    return b"".join(pieces + [raw[prev:]]), cuts


def _expected(raw: bytes, cuts: list[int], codec: str) -> str:
    parts, prev = [], 0
    for cut, (_, char) in zip(cuts, INSERTED):
        parts += [raw[prev:cut].decode(codec), char]
        prev = cut
    return "".join(parts + [raw[prev:].decode(codec)])


def test_stray_latin1_bytes_repaired_one_by_one() -> None:
    raw = book_bytes(gutenberg("1952-0.txt"))  # UTF-8, curly quotes
    damaged, cuts = _insert(raw)
    text, stats = textdecode.decode_text(damaged)
    assert (stats.encoding, stats.invalid_bytes, stats.repaired_bytes) == ("utf-8", 5, 5)
    assert text == _expected(raw, cuts, "utf-8")
    assert "\u201c" in text and "\u2014" in text  # the rest is still read as UTF-8
    doc = record(damaged, "1952-0.txt")
    clean = record(raw, "1952-0.txt")
    assert all(char in doc.text for char in ("é", "è", "ü", "\u2019"))
    assert len(doc.text) - len(clean.text) <= len(INSERTED)


def test_ascii_book_with_stray_bytes_reads_the_same_either_way() -> None:
    """No valid multi-byte UTF-8 at all: whole-file windows-1252, same characters as repair."""
    raw = book_bytes(gutenberg("1342.txt"))  # pure ASCII
    damaged, cuts = _insert(raw)
    text, stats = textdecode.decode_text(damaged)
    assert (stats.encoding, stats.invalid_bytes, stats.repaired_bytes) == ("windows-1252", 5, 0)
    assert text == _expected(raw, cuts, "ascii")


def test_broken_multibyte_sequence_counts_each_byte() -> None:
    raw = "naïve café “quoted” text ".encode() * 3 + b"cut \xe2\x80 here"
    text, stats = textdecode.decode_text(raw)
    assert stats.repaired_bytes == 2 and text.endswith("cut \u00e2\u20ac here")
    assert text.startswith("naïve café “quoted”")


def test_utf16_with_bom() -> None:
    raw = book_bytes(gutenberg("1952-0.txt"))
    utf16 = raw.decode("utf-8").encode("utf-16")
    assert record(utf16, "y.txt").text == record(raw, "y.txt").text


def test_headings_dropped_by_default_kept_on_request() -> None:
    raw = book_bytes(gutenberg("1342.txt"))
    default = record(raw, "1342.txt").text.split("\n")
    kept = record(raw, "1342.txt", books.BookOptions(keep_headings=True))
    kept_lines = kept.text.split("\n")
    assert "Chapter 1" not in default and "Chapter 61" not in default
    assert "Chapter 1" in kept_lines and "Chapter 61" in kept_lines
    assert kept_lines.index("Chapter 1") < kept_lines.index(default[0])


def test_long_contents_and_numbered_headings_dropped() -> None:
    moby = processed(gutenberg("2701-0.txt")).record.text
    assert "CHAPTER 1. Loomings." not in moby and "CHAPTER 56." not in moby
    assert "Call me Ishmael." in moby
    grimm = processed(gutenberg("2591-0.txt")).record.text
    assert "HANS IN LUCK JORINDA" not in grimm


def test_filter_equals_textnorm_join() -> None:
    """read_book's heading filter is textnorm.join_paragraphs on already-normal paragraphs."""
    raw = book_bytes(gutenberg("2591-0.txt"))  # UTF-8 + BOM with headings, as 84-0
    text, _ = textdecode.decode_text(raw)
    body, _ = gb.strip_book(text)
    for keep in (False, True):
        joined = textnorm.join_paragraphs(books.paragraphs(body, keep), keep_headings=keep)
        opts = books.BookOptions(keep_headings=keep)
        assert record(raw, "2591-0.txt", opts).text == joined


def test_too_large_rejected_and_strip_gutenberg_api() -> None:
    raw = book_bytes(gutenberg("5200.txt"))
    rec = record(raw, "5200.txt", books.BookOptions(max_bytes=1000))
    assert isinstance(rec, Dropped) and rec.reason == "too_large" and rec.title == "5200"
    body, found = gb.strip_gutenberg(raw.decode("ascii"))
    assert found and "One morning, when Gregor Samsa" in body and "FULL LICENSE" not in body
    assert gb.strip_gutenberg("Just a note.\n\nNo markers.") == (
        "Just a note.\n\nNo markers.",
        False,
    )
