"""bertprep recompress: turn a plain .xml.bz2 MediaWiki dump into multistream .xml.bz2 + index.

A plain (single-stream) bz2 dump can only be read from its start, so one worker reads all of it.
The multistream form (Wikipedia's own "pages-articles-multistream" layout: a header stream, one
stream per 100 pages, a footer stream, and an index of OFFSET:PAGEID:TITLE lines) lets
`bertprep extract` split the dump into byte ranges read by many workers in parallel.

Example:
  bertprep recompress enwiki-pages-articles.xml.bz2 \\
      --output enwiki-pages-articles-multistream.xml.bz2
  (writes enwiki-pages-articles-multistream-index.txt.bz2 beside it)

Paths may be local or any Apache Beam filesystem (gs://...). Outputs are written to a
temporary name and renamed when complete. A dump cut before </mediawiki> is converted with all
its complete pages, closed with </mediawiki>, and the cut is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack

from ground.errors import UserError
from pipeline.common import fs
from pipeline.extract.wiki.multistream import index_path_for
from pipeline.extract.wiki.recompress import recompress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bertprep recompress``."""
    parser.add_argument("input", metavar="INPUT", help="plain MediaWiki dump, .xml.bz2")
    parser.add_argument(
        "--output",
        required=True,
        help="path of the multistream .xml.bz2 to write (e.g. X-multistream.xml.bz2)",
    )
    parser.add_argument(
        "--index",
        default=None,
        help="path of the index to write (default: Wikipedia's naming, "
        "X-multistream.xml.bz2 -> X-multistream-index.txt.bz2; other names Y.xml.bz2 -> "
        "Y-index.txt.bz2), which is where `bertprep extract` looks for it",
    )
    parser.add_argument(
        "--pages-per-stream",
        type=int,
        default=100,
        help="pages per bz2 stream, the unit of splitting (default: 100, as Wikipedia)",
    )
    parser.add_argument(
        "--compresslevel",
        type=int,
        default=9,
        choices=range(1, 10),
        metavar="{1..9}",
        help="bzip2 block size in 100 kB (default: 9, as Wikipedia)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
        help="threads compressing streams while one thread reads the input; the output is the "
        "same for any value (default: the CPUs this process may run on)",
    )


def _opened(opener, path: str, compression: str, verb: str):
    """``opener(path)``, with an OS error (a directory, no permission, no such folder) turned
    into a one-line UserError."""
    try:
        return opener(path, compression_type=compression)
    except OSError as exc:
        raise UserError(f"cannot {verb} {path}: {exc}") from exc


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Convert ``args.input``; print what was written. Returns the exit code (0)."""
    from apache_beam.io.filesystem import (
        CompressionTypes,  # Beam (~1 s): only once a pipeline is built
    )
    from apache_beam.io.filesystems import FileSystems  # Beam (~1 s): only once a pipeline is built

    raw = CompressionTypes.UNCOMPRESSED  # the bytes as they are: never let Beam (de)compress
    index = args.index or index_path_for(args.output)
    if not fs.exists(args.input):
        raise UserError(f"input {args.input} does not exist")
    if len({args.input, args.output, index}) < 3:
        raise UserError("INPUT, --output and --index must be three different paths")
    if args.pages_per_stream < 1:
        raise UserError("--pages-per-stream must be at least 1")
    if args.workers < 1:
        raise UserError("--workers must be at least 1")

    suffix = f".tmp-{os.getpid()}"
    tmp_out, tmp_index = args.output + suffix, index + suffix
    try:
        with ExitStack() as files:
            src = files.enter_context(_opened(FileSystems.open, args.input, raw, "read"))
            dst = files.enter_context(_opened(FileSystems.create, tmp_out, raw, "write"))
            idx = files.enter_context(_opened(FileSystems.create, tmp_index, raw, "write"))
            stats = recompress(
                src, dst, idx, args.pages_per_stream, args.compresslevel, args.workers
            )
        FileSystems.rename([tmp_index, tmp_out], [index, args.output])
    except BaseException:
        leftovers = [p for p in (tmp_out, tmp_index) if fs.exists(p)]
        if leftovers:
            FileSystems.delete(leftovers)
        raise

    mb = 1e6
    print(
        f"wrote {args.output}: {stats.pages} pages in {stats.streams} streams, "
        f"{stats.xml_bytes / mb:.1f} MB of XML -> {stats.bytes_out / mb:.1f} MB; index {index}"
    )
    if stats.missing_ids:
        print(
            f"warning: {stats.missing_ids} pages have no <id> or <title>; their index fields "
            "are empty",
            file=sys.stderr,
        )
    if not stats.complete:
        dropped = (
            f", dropped {stats.dropped_bytes} bytes of an incomplete last page"
            if stats.dropped_bytes
            else ""
        )
        print(
            f"warning: {args.input} is cut ({stats.cut}): kept all {stats.pages} complete "
            f"pages{dropped}; the output is closed with </mediawiki>",
            file=sys.stderr,
        )
    return 0
