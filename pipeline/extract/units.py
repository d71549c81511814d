"""Work units of the extraction stage: which bytes of which input file one worker reads.

A unit is a whole file, except for multistream Wikipedia dumps with an index, which are cut
into byte ranges of whole bz2 streams so one large dump is read by many workers. Units are
planned in the launching process (listing files and reading small index files only) and
sorted, so the plan, and every file name derived from it, does not depend on the runner.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from pipeline.common import fs
from pipeline.common.records import BOOKS, CORPUS, WIKIPEDIA
from pipeline.extract.corpora import corpus_format
from pipeline.extract.wiki import multistream

# Compressed bytes per multistream range: ~50 MB of XML, a few seconds of work per unit.
DEFAULT_RANGE_BYTES = 16 << 20


@dataclass(frozen=True, order=True)
class Unit:
    """One piece of input.

    Attributes:
        source: ``wikipedia``, ``books`` or ``corpus``.
        relpath: path relative to its input root (hashed into document ids).
        path: full path on its filesystem.
        start: first byte of a multistream range, or -1 for the whole file.
        end: end byte (exclusive) of the range, or -1.
        header: the dump's decompressed XML header (``<mediawiki>`` + ``<siteinfo>``),
            prepended to every range so each range parses as a complete document (ranges only).
    """

    source: str
    relpath: str
    path: str
    start: int = -1
    end: int = -1
    header: bytes = field(default=b"", compare=False, repr=False)

    @property
    def key(self) -> str:
        """Readable, unique, filesystem-safe name used for this unit's output files."""
        base = self.relpath.replace("/", "__")
        if self.start >= 0:
            base += f"@{self.start:012d}"
        return f"{self.source}-{base}"


def list_inputs(
    wikipedia: list[str], books: list[str], corpora: list[str]
) -> list[tuple[str, fs.InputFile]]:
    """``(source, file)`` for every input file the patterns match, pattern by pattern.

    Books directories contribute their ``*.txt``, corpus directories every file at any depth
    (WikiExtractor writes ``AA/wiki_00``, ``AB/wiki_00``...); a multistream index matched
    beside its dump by a broad glob is not an input.
    """
    found = []
    for pattern in wikipedia:
        for f in fs.expand(pattern):
            if not (f.relpath.endswith("-index.txt.bz2") or f.relpath.endswith("-index.txt")):
                found.append((WIKIPEDIA, f))
    found += [(BOOKS, f) for pattern in books for f in fs.expand(pattern, "*.txt")]
    found += [(CORPUS, f) for pattern in corpora for f in fs.expand(pattern, "**")]
    return found


def plan_units(
    wikipedia: list[str],
    books: list[str],
    corpora: list[str],
    range_bytes: int = DEFAULT_RANGE_BYTES,
    split_multistream: bool = True,
) -> list[Unit]:
    """Expand input patterns into sorted units.

    Args:
        wikipedia: paths or globs of ``.xml`` / ``.xml.bz2`` dumps.
        books: directories (``*.txt`` inside) or globs of book files.
        corpora: paths or globs of JSONL / Parquet / text corpora.
        range_bytes: target compressed bytes per multistream range.
        split_multistream: read multistream dumps with an index in ranges.
    """
    units: list[Unit] = []
    for source, f in list_inputs(wikipedia, books, corpora):
        if source == WIKIPEDIA:
            units.extend(_wiki_units(f, range_bytes, split_multistream))
        else:
            if source == CORPUS:
                corpus_format(f.relpath)  # an unknown extension: one line here, not in a worker
            units.append(Unit(source, f.relpath, f.path))
    units = sorted(set(units))
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise ValueError("two inputs map to the same relative path; give distinct roots")
    return units


def _wiki_units(f: fs.InputFile, range_bytes: int, split: bool) -> list[Unit]:
    whole = [Unit(WIKIPEDIA, f.relpath, f.path)]
    if not split or not f.path.endswith(".bz2"):
        return whole

    index_path = multistream.find_index(f.path, exists=fs.exists)
    if not index_path:
        if f.size > 4 * range_bytes:
            print(
                f"extract: {f.relpath} has no multistream index beside it and is read by one "
                "worker; `bertprep recompress` makes a splittable copy",
                file=sys.stderr,
            )
        return whole
    plan = multistream.plan_dump(fs.open_read, f.path, index_path, f.size, range_bytes)
    return [
        Unit(WIKIPEDIA, f.relpath, f.path, start, end, plan.header) for start, end in plan.ranges
    ]
