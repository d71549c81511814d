"""WikiExtractor output -> records: plain ``<doc>`` blocks or ``--json`` lines.

WikiExtractor (attardi/wikiextractor; what the NVIDIA BERT recipe and most tutorials run) writes
``AA/wiki_00``-style files (``wiki_00.bz2`` with ``--compress``) in one of two forms:

- plain: ``<doc id="ID" url="URL" title="TITLE">``, the title again on the first body line,
  a blank line, the text (one paragraph per line, section headings as lines ending in ``.``),
  ``</doc>``;
- ``--json``: one object per line with ``id``, ``url``, ``title``, ``text`` (3.x adds
  ``revid``); its text has no title line.

Both forms give the same records:

- The repeated title line is dropped (plain form: the first non-blank body line, only when it
  equals the title). It is WikiExtractor's header, not article text: the JSON form has no such
  line, the Wikipedia-dump path keeps titles only in the ``title`` column, and NVIDIA's recipe
  and ``benchmarks/bench_value.py`` drop it too.
- WikiExtractor HTML-escapes ``&``, ``<``, ``>`` in the text (``--html-safe``, its default):
  undone exactly (:func:`unescape_text`). Titles carry the dump's XML escaping (``&amp;``,
  ``&quot;``): undone with :func:`html.unescape`.
- The rest is text as given, like any ``--corpus`` input: section heading lines stay (they cannot
  be told from one-sentence paragraphs: WikiExtractor ends both with a full stop).

Keys (:func:`pipeline.common.records.doc_id`) come from the ``id`` attribute, as the dump path
keys pages by page id: an id that is not a number above every id before it in the file is keyed
``"{id}@{ordinal}"``, so ids stay unique without remembering every id seen. ``page_id`` is the
id when it is a number.

Malformed input is one counted ``bad_record`` each, never a silent loss: a ``<doc>`` left
unclosed (by the next ``<doc>`` or the end of the file: its end is unknown), a malformed header
or one without an id, a ``</doc>`` with no open ``<doc>``, text outside any ``<doc>`` (one record
per run of lines), a line that is not a JSON object with an id and a text, non-UTF-8 bytes. A
document over ``max_record_bytes`` is ``too_large`` and is not held.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.common.records import Document, Dropped

if TYPE_CHECKING:
    from pipeline.extract.corpora import RecordMaker

PLAIN, JSON = "plain", "json"
JSON_KEYS = frozenset({"id", "url", "title", "text"})
_BOM = b"\xef\xbb\xbf"
_HEADER = re.compile(r"<doc(\s.*)?>\s*")
_ATTRS = re.compile(r'(?:\s+[\w:-]+="[^"]*")*\s*')
_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')
# WikiExtractor writes the title last and unescaped by its own rules: it may hold a quote.
_TITLE_LAST = re.compile(r'\stitle="(.*)"\s*$')

Lines = Iterator[tuple[int, "bytes | None"]]  # (0-based line number, line or None: too long)


def is_header(line: bytes) -> bool:
    """Whether a line opens a ``<doc>`` (well-formed or not)."""
    return line.startswith(b"<doc") and line[4:5] in (b"", b" ", b"\t", b">")


def sniff(head: bytes, json_too: bool = True) -> str | None:
    """:data:`PLAIN`, :data:`JSON` or ``None`` from the first bytes of a decompressed file,
    judged on its first non-blank line (which ``head`` must hold whole, when there is one)."""
    first = head.removeprefix(_BOM).lstrip().split(b"\n", 1)[0].rstrip()
    if is_header(first):
        return PLAIN
    if json_too and first.startswith(b"{"):
        try:
            obj = json.loads(first)
        except (ValueError, RecursionError):
            return None
        if isinstance(obj, dict) and JSON_KEYS <= obj.keys():
            return JSON
    return None


def unescape_text(text: str) -> str:
    """The exact inverse of ``html.escape(text, quote=False)``, which WikiExtractor applies to
    the text (``html.unescape`` would also turn a literal ``&copy`` into ``©``)."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_header(line: str) -> dict[str, str] | None:
    """Attributes of a ``<doc ...>`` line; ``None`` when it is not one."""
    m = _HEADER.fullmatch(line)
    if not m:
        return None
    attrs = m.group(1) or ""
    if _ATTRS.fullmatch(attrs):
        return dict(_ATTR.findall(attrs))
    t = _TITLE_LAST.search(attrs)  # a quote inside the title
    if not t or not _ATTRS.fullmatch(attrs[: t.start()]):
        return None
    return {**dict(_ATTR.findall(attrs[: t.start()])), "title": t.group(1)}


class _Keys:
    """Record keys from ``id`` attributes: the id while ids increase, else ``id@ordinal``
    (ordinal: the 0-based position of the document among the file's documents)."""

    def __init__(self) -> None:
        self.last = -1

    def __call__(self, ident: str, ordinal: int) -> tuple[str, int]:
        """``(key, page_id)``; page_id is -1 for an id that is not a number."""
        number = int(ident) if ident.isascii() and ident.isdigit() else -1
        if number > self.last:
            self.last = number
            return ident, number
        return f"{ident}@{ordinal}", number


@dataclass
class _OpenDoc:
    """A ``<doc>`` being read: its header line number and attributes, and its body lines."""

    start: int
    ordinal: int
    attrs: dict[str, str] | None
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    oversize: bool = False

    def add(self, line: bytes | None, limit: int) -> None:
        if line is None or self.oversize or self.size + len(line) + 1 > limit:
            self.lines, self.oversize = [], True  # past the limit nothing is held
        else:
            self.lines.append(line)
            self.size += len(line) + 1


def _title(raw: str) -> str:
    return " ".join(html.unescape(raw).split())


def _close(doc: _OpenDoc, make: RecordMaker, keys: _Keys, unclosed: str = "") -> Document | Dropped:
    """The record of one ``<doc>``; ``unclosed``: why it has no ``</doc>``."""
    where = f"line {doc.start + 1}"
    attrs = doc.attrs
    if attrs is None:
        return make.drop(f"line:{doc.start}", "bad_record", f"{where}: malformed <doc> header")
    raw_title, ident = attrs.get("title", ""), attrs.get("id", "")
    title = _title(raw_title)
    if not ident:
        return make.drop(f"line:{doc.start}", "bad_record", f"{where}: <doc> has no id", title)
    key, page_id = keys(ident, doc.ordinal)
    if unclosed:
        return make.drop(key, "bad_record", f"{where}: <doc> not closed ({unclosed})", title)
    if doc.oversize:
        limit = make.options.max_record_bytes
        return make.drop(key, "too_large", f"{where}: over {limit} bytes", title)
    try:
        lines = [line.decode("utf-8") for line in doc.lines]
    except UnicodeDecodeError as exc:
        return make.drop(key, "bad_record", f"{where}: not UTF-8 ({exc.reason})", title)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and (
        lines[first].strip() == raw_title.strip() or _title(lines[first]) == title
    ):
        del lines[first]  # the title line WikiExtractor repeats (module doc)
    return make.doc(key, unescape_text("\n".join(lines)), title, page_id)


def _kind(line: bytes | None) -> str:
    """``open``, ``close``, ``blank`` or ``text`` (a line too long to hold is text)."""
    if line is None:
        return "text"
    if is_header(line):
        return "open"
    stripped = line.strip()
    return "close" if stripped == b"</doc>" else "text" if stripped else "blank"


def _stray(first: int, last: int, make: RecordMaker) -> Dropped:
    detail = f"lines {first + 1}-{last + 1}: text outside any <doc>"
    return make.drop(f"line:{first}", "bad_record", detail)


def read_plain(lines: Lines, make: RecordMaker) -> Iterator[Document | Dropped]:
    """Records of ``<doc>`` blocks, in file order."""
    keys, limit = _Keys(), make.options.max_record_bytes
    doc: _OpenDoc | None = None
    ordinal = -1  # of the last <doc>
    stray: tuple[int, int] | None = None  # first and last line of text outside any <doc>
    for number, line in lines:
        if number == 0 and line is not None:
            line = line.removeprefix(_BOM)
        kind = _kind(line)
        if stray and kind in ("open", "close"):  # a tag ends a run of stray text
            yield _stray(*stray, make)
            stray = None
        if kind == "open":
            if doc is not None:
                yield _close(doc, make, keys, f"a new <doc> starts at line {number + 1}")
            try:
                attrs = parse_header(line.decode("utf-8"))  # type: ignore[union-attr]
            except UnicodeDecodeError:
                attrs = None
            ordinal += 1
            doc = _OpenDoc(number, ordinal, attrs)
        elif kind == "close" and doc is None:
            detail = f"line {number + 1}: </doc> without an open <doc>"
            yield make.drop(f"line:{number}", "bad_record", detail)
        elif kind == "close":
            yield _close(doc, make, keys)  # type: ignore[arg-type]
            doc = None
        elif doc is not None:
            doc.add(line, limit)
        elif kind == "text":
            stray = (stray[0] if stray else number, number)
    if stray:
        yield _stray(*stray, make)
    if doc is not None:
        yield _close(doc, make, keys, "the file ends first")


def read_json(lines: Lines, make: RecordMaker) -> Iterator[Document | Dropped]:
    """Records of ``--json`` lines (one object per line), in file order."""
    keys, limit = _Keys(), make.options.max_record_bytes
    ordinal = -1  # of the last record line
    for number, line in lines:
        if line is not None:
            line = line.removeprefix(_BOM) if number == 0 else line
            if not line.strip():
                continue  # a blank line is not a record
        ordinal += 1
        where = f"line {number + 1}"
        if line is None:
            yield make.drop(f"line:{number}", "too_large", f"{where}: over {limit} bytes")
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield make.drop(f"line:{number}", "bad_record", f"{where}: not UTF-8 ({exc.reason})")
            continue
        except (ValueError, RecursionError) as exc:
            yield make.drop(f"line:{number}", "bad_record", f"{where}: not JSON ({exc})")
            continue
        if not isinstance(obj, dict):
            yield make.drop(f"line:{number}", "bad_record", f"{where}: not a JSON object")
            continue
        title = _title(str(obj.get("title") or ""))
        ident, text = obj.get("id"), obj.get("text")
        if ident is None or str(ident) == "":
            yield make.drop(f"line:{number}", "bad_record", f"{where}: no id", title)
            continue
        key, page_id = keys(str(ident), ordinal)
        if not isinstance(text, str):
            yield make.drop(key, "bad_record", f"{where}: 'text' is not a string", title)
            continue
        yield make.doc(key, unescape_text(text), title, page_id)


def read(form: str, lines: Lines, make: RecordMaker) -> Iterator[Document | Dropped]:
    """Records of one WikiExtractor file of ``form`` (:data:`PLAIN` or :data:`JSON`)."""
    return read_plain(lines, make) if form == PLAIN else read_json(lines, make)
