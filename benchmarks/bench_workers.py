"""Where do more workers start to pay? Wall time of `extract --no-dedup` + `segment` on 1 and
2 workers, on the FnApiRunner and on Dask, as the input grows.

Input: the 4 books bundled in corpus/books, copied K times into K folders (distinct paths, so
distinct document ids; --no-dedup keeps the copies), for each K in --copies. Runners:
FnApiRunner in process, FnApiRunner with --direct_num_workers 2, and DaskRunner on a
LocalCluster of 1 and of 2 single-threaded worker processes (started here, outside the timing).
Each cell is the wall time of the two stages as subprocesses, so start-up is included, as a
user pays it. Outputs are checked to be identical across runners.

Usage: .venv/bin/python benchmarks/bench_workers.py [--copies 1 8 32]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOKS = ROOT / "corpus" / "books"


def _stages(books: Path, run: Path, beam_args: list[str]) -> float:
    t0 = time.perf_counter()
    for argv in (
        ["extract", "--books", str(books / "*" / "*.txt"), "--no-dedup", "--output", str(run)],
        ["segment", "--output", str(run)],
    ):
        subprocess.run(
            [sys.executable, "-m", "bertprep", *argv, *beam_args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return time.perf_counter() - t0


def _digest(run: Path) -> str:
    h = hashlib.sha256()
    for sub in ("docs", "sentences"):
        for p in sorted((run / sub).glob("*.parquet")):
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def main() -> None:
    from distributed import LocalCluster

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 8, 32])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    clusters = {
        n: LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        for n in (1, 2)
    }
    runners = {
        "fnapi x1": [],
        "fnapi x2": ["--direct_num_workers", "2"],
        "dask x1": ["--runner", "dask", "--dask_client_address", clusters[1].scheduler_address],
        "dask x2": ["--runner", "dask", "--dask_client_address", clusters[2].scheduler_address],
    }
    try:
        print("| copies | MB | " + " | ".join(runners) + " |")
        print("|---" * (len(runners) + 2) + "|")
        for k in args.copies:
            books = tmp / f"books-{k}"
            for i in range(k):
                shutil.copytree(BOOKS, books / f"copy{i:04d}")
            mb = sum(p.stat().st_size for p in books.rglob("*.txt")) / 1e6
            cells, digests = [], set()
            for name, beam_args in runners.items():
                run = tmp / f"run-{k}-{name.replace(' ', '')}"
                cells.append(f"{_stages(books, run, beam_args):.1f} s")
                digests.add(_digest(run))
                shutil.rmtree(run)
            assert len(digests) == 1, "outputs differ across runners"
            print(f"| {k} | {mb:.1f} | " + " | ".join(cells) + " |", flush=True)
    finally:
        for c in clusters.values():
            c.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
