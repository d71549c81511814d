"""Multistream ``.xml.bz2`` dumps: the index and the plan that cuts one dump into ranges.

Wikipedia's ``*-pages-articles-multistream.xml.bz2`` is a concatenation of independent bz2
streams: stream 0 holds the XML header (``<mediawiki ...>`` and ``<siteinfo>``), then each stream
holds about 100 ``<page>`` elements, and a last stream holds ``</mediawiki>``. The companion
``*-multistream-index.txt.bz2`` has one line ``OFFSET:PAGEID:TITLE`` per page, OFFSET being the
byte offset in the compressed file of the stream that holds the page.

Here: finding the index (:func:`find_index`), parsing it (:func:`read_index`,
:func:`iter_index`) and :func:`plan_dump` (index + header + :func:`plan_ranges`), which cuts the
file into byte ranges of whole streams, or finds the streams by
:func:`~pipeline.extract.wiki.bz2streams.scan_stream_offsets` when there is no index. Reading
one range as a complete XML document is
:func:`pipeline.extract.wiki.bz2streams.open_range`; writing such a file and its index from a
plain dump is :mod:`pipeline.extract.wiki.recompress`. Everything here takes file objects: no
Beam, no paths, so it works on any Beam FileSystem and in tests alike. All sizes are bytes;
"offset" means an offset in the compressed file.
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
from pipeline.extract.wiki.bz2streams import Prepend, read_header, scan_header, scan_stream_offsets

INDEX_CHUNK = 1 << 20  # index bytes (decompressed) parsed at a time
DEFAULT_RANGE_BYTES = 64 << 20  # compressed bytes per range (~250 MB of XML)

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


def _index_text(fileobj: BinaryIO) -> BinaryIO:
    """The index's text as a binary reader, decompressing when it is bz2."""
    head = fileobj.read(3)
    raw = io.BufferedReader(Prepend(head, fileobj))  # type: ignore[arg-type]
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
            chunk = text.read(INDEX_CHUNK)
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
    handled: :func:`~pipeline.extract.wiki.bz2streams.open_range` then takes the header from
    that stream itself).
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
    """How to read one multistream dump in pieces: ``bz2streams.open_range(f, start, end,
    header)`` gives one complete XML document for each ``(start, end)`` in ``ranges``."""

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

    With ``index_path=None`` the stream offsets come from
    :func:`~pipeline.extract.wiki.bz2streams.scan_stream_offsets`, which reads the whole
    compressed file once (the index is a few % of it): slower, same plan boundaries up to the
    footer stream. A single-stream dump then plans as one range.
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
            header, has_page = scan_header(f, 0)
        if not has_page:
            offsets = offsets[1:]  # stream 0 is the header alone, as in Wikipedia's files
        if not offsets:
            raise UserError(f"{path} holds only a header stream, no pages")
    return DumpPlan(header, plan_ranges(offsets, file_size, target_bytes))
