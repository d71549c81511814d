"""Multistream dumps, measured: recompress speed, and reading split ranges against the whole file.

1. ``recompress`` of a plain .xml.bz2: MB of XML per wall second and per CPU second.
2. Reading the result: the whole file with ``bz2.open`` (one reader, the only option for a plain
   dump) against every range from ``plan_ranges`` read one after another in one process (the
   overhead of splitting: header re-read per range, per-stream decompressors), and the same
   ranges spread over ``--workers`` processes (what Beam workers get). Each read is timed twice:
   decompression only, and decompression + ``ElementTree.iterparse`` of every page.

    .venv/bin/python benchmarks/bench_multistream.py
    .venv/bin/python benchmarks/bench_multistream.py --input DUMP.xml.bz2 --ranges 16 --workers 2
"""

from __future__ import annotations

import argparse
import bz2
import multiprocessing
import resource
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from pipeline.extract.wiki import bz2streams as bs
from pipeline.extract.wiki import multistream as ms
from pipeline.extract.wiki.recompress import recompress

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "corpora" / "wikipedia" / "wp2txt_testdata_en.xml.bz2"
MB = 1e6


def cpu_seconds() -> float:
    """User + sys CPU seconds of this process and its finished children."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def consume(reader, parse: bool) -> int:
    """Read ``reader`` to its end; count pages when ``parse``, else decompressed bytes."""
    if not parse:
        return sum(len(b) for b in iter(lambda: reader.read(1 << 20), b""))
    pages = 0
    try:
        for _, el in ET.iterparse(reader):
            if el.tag.endswith("}page"):
                pages += 1
                el.clear()
    except ET.ParseError:  # a cut dump: pages before the cut are counted
        pass
    return pages


def read_range(job: tuple[str, int, int, bytes, bool]) -> int:
    path, start, end, header, parse = job
    with open(path, "rb") as f:
        return consume(bs.open_range(f, start, end, header), parse)


def pooled(ctx, workers: int, jobs: list) -> int:
    """Read ``jobs`` in ``workers`` processes; they are joined so their CPU time is counted."""
    pool = ctx.Pool(workers)
    try:
        return sum(pool.map(read_range, jobs, chunksize=1))
    finally:
        pool.close()
        pool.join()


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT, help="plain .xml.bz2 dump")
    parser.add_argument("--pages-per-stream", type=int, default=10)
    parser.add_argument("--ranges", type=int, default=8, help="about this many ranges")
    parser.add_argument("--workers", type=int, default=2, help="threads / processes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench-multistream.xml.bz2"
        index = Path(ms.index_path_for(str(out)))
        for workers in sorted({1, args.workers}):
            with args.input.open("rb") as src, out.open("wb") as dst, index.open("wb") as idx:
                wall, cpu, stats = timed(
                    lambda: recompress(src, dst, idx, args.pages_per_stream, workers=workers)  # noqa: B023
                )
            xml_mb = stats.xml_bytes / MB
            if workers == 1:
                print(f"input {args.input.name}: {xml_mb:.1f} MB XML, {stats.pages} pages")
            print(
                f"recompress (pages/stream {args.pages_per_stream}, level 9, {workers} threads): "
                f"{wall:.2f} s wall, {cpu:.2f} s CPU -> {xml_mb / wall:.1f} MB/s wall, "
                f"{xml_mb / cpu:.1f} MB/CPU-s; {stats.streams} streams, "
                f"{stats.bytes_out / MB:.2f} MB out (source {args.input.stat().st_size / MB:.2f} "
                f"MB); peak RSS so far "
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
            )

        with index.open("rb") as f:
            offsets = ms.read_index(f)
        size = out.stat().st_size
        with out.open("rb") as f:
            header = bs.read_header(f, ms.header_end(offsets))
        ranges = ms.plan_ranges(offsets, size, max(1, (size - offsets[0]) // args.ranges))
        ctx = multiprocessing.get_context("fork")
        for parse in (False, True):
            what = "decompress+iterparse" if parse else "decompress only"
            jobs = [(str(out), a, b, header, parse) for a, b in ranges]
            whole = timed(lambda: consume(bz2.open(out), parse))  # noqa: B023
            seq = timed(lambda: sum(map(read_range, jobs)))  # noqa: B023
            par = timed(lambda: pooled(ctx, args.workers, jobs))  # noqa: B023
            unit = "pages" if parse else "bytes"
            print(f"{what}: whole file {whole[0]:.2f} s wall / {whole[1]:.2f} s CPU", end="")
            print(f" ({whole[2]} {unit})")
            print(
                f"  {len(ranges)} ranges in 1 process: {seq[0]:.2f} s wall / {seq[1]:.2f} s CPU"
                f" ({seq[2]} {unit}, header {len(header)} B added per range)"
            )
            print(
                f"  {len(ranges)} ranges in {args.workers} processes: {par[0]:.2f} s wall"
                f" / {par[1]:.2f} s CPU; speed-up over whole file {whole[0] / par[0]:.2f}x"
            )


if __name__ == "__main__":
    main()
