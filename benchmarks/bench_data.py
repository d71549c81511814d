"""Loader throughput (samples/s) of ``pretrain.data.PretrainLoader`` on real shards.

Builds (once, cached in ``--work``) a shard set from 4 bundled books with dupe factor 5 through
the project's CLI, masked and ``--unmasked`` (dynamic masking), both phases, then iterates
``--epochs`` epochs per setting: seq128 / seq512, static / dynamic masks, binning on seq512,
prefetch on / off. ``--step-ms`` sleeps that long per batch to stand in for a training step (the
sleep releases the GIL, like a GPU step does), so the prefetch thread can overlap shard reads:
the printed ``overhead`` is wall time minus the simulated steps, i.e. what the trainer waits for.

    .venv/bin/python benchmarks/bench_data.py
    .venv/bin/python benchmarks/bench_data.py --step-ms 20
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import time
from pathlib import Path

from bertprep.cli import main as cli_main
from pretrain.data import PretrainLoader, load_shard
from sharding.reader import ShardSet

ROOT = Path(__file__).resolve().parents[1]
BOOKS = ("11-0.txt", "1661.txt", "1952-0.txt", "345-8.txt")


def build(work: Path, unmasked: bool) -> Path:
    """Shard set of the 4 bundled books (dupe 5) under ``work``; reused when present."""
    run = work / ("unmasked" if unmasked else "masked")
    if (run / "seq512" / "_SUCCESS").is_file():
        return run
    books = work / "books"
    books.mkdir(parents=True, exist_ok=True)
    for b in BOOKS:
        shutil.copy(ROOT / "corpus" / "books" / b, books / b)
    argv = ["build", "--books", str(books), "--output", str(run), "--vocab-size", "8000"]
    argv += ["--dupe-factor", "5", "--num-shards", "8", "--group-tokens", "50000"]
    assert cli_main(argv + (["--unmasked"] if unmasked else [])) == 0
    return run


def measure(directory: Path, micro_batch: int, epochs: int, step_ms: float, reps: int, **kw):
    """Median over ``reps`` of (samples/s, overhead seconds per batch)."""
    rates, overheads = [], []
    for _ in range(reps):
        loader = PretrainLoader(directory, micro_batch, seed=1, **kw)
        n = loader.batches_per_epoch() * epochs
        start = time.perf_counter()
        for _batch in itertools.islice(iter(loader), n):
            if step_ms:
                time.sleep(step_ms / 1000)
        wall = time.perf_counter() - start
        loader.close()
        rates.append(n * micro_batch / wall)
        overheads.append((wall - n * step_ms / 1000) / n)
    return statistics.median(rates), statistics.median(overheads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bertprep_bench_data"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--step-ms", type=float, default=0.0, help="simulated training step per batch")
    args = ap.parse_args()
    runs = {False: build(args.work, False), True: build(args.work, True)}
    print(f"step-ms {args.step_ms}, epochs {args.epochs}, median of {args.reps}")
    header = f"{'phase':7} {'masks':8} {'bins':5} {'B':>4} {'prefetch':8} {'samples/s':>10}"
    for phase in ("seq128", "seq512"):
        readers = ShardSet.open(runs[False] / phase).training
        times = []
        for r in readers:
            start = time.perf_counter()
            load_shard(r)
            times.append(time.perf_counter() - start)
        print(
            f"{phase}: {len(readers)} shards x ~{len(readers[0])} instances, whole-shard read "
            f"{statistics.median(times) * 1000:.1f} ms median"
        )
    print(header + f" {'overhead ms/batch':>18}")
    for phase, b in (("seq128", 64), ("seq512", 16)):
        for unmasked in (False, True):
            for bins in (None, 64) if phase == "seq512" else (None,):
                for prefetch in (False, True):
                    rate, over = measure(
                        runs[unmasked] / phase, b, args.epochs, args.step_ms, args.reps,
                        prefetch=prefetch, bin_size=bins,
                    )  # fmt: skip
                    masks = "dynamic" if unmasked else "static"
                    print(
                        f"{phase:7} {masks:8} {str(bins or '-'):5} {b:4d} {str(prefetch):8} "
                        f"{rate:10.0f} {over * 1000:18.3f}"
                    )


if __name__ == "__main__":
    main()
