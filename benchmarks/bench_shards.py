"""Shard storage choices, measured: gzip level, shuffle filter and chunk size per phase.

For seq 128 / max_pred 20 and seq 512 / max_pred 80 it builds realistic instances (BERT layout,
90% full-length and 10% short, 15% masking with 80/10/10, random A/B split, 50% NSP), writes
one shard per setting with ``sharding.writer.write_shard`` (atomic write, fsync and sha256
included) and reads it back whole like NVIDIA's loader (``ShardReader.read_all``). Prints
write and read CPU seconds (median of ``--reps``) and size in bytes per instance.

Token sources: ``zipf`` (ids drawn from a Zipf(1.1) law over a fixed random permutation of
the non-special bert-base-uncased ids) and ``books`` (a real token stream: the bundled
Gutenberg books through HF ``tokenizers`` with the bert-base-uncased vocab).

    .venv/bin/python benchmarks/bench_shards.py                 # both sources, all settings
    .venv/bin/python benchmarks/bench_shards.py --source books --reps 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sharding import schema
from sharding.reader import ShardReader
from sharding.writer import write_shard

ROOT = Path(__file__).resolve().parents[1]
VOCAB = ROOT / "corpus" / "vocab" / "bert-base-uncased-vocab.txt"
PHASES = {"seq128": (128, 20, 32768), "seq512": (512, 80, 8192)}  # L, P, instances per shard
CLS, SEP, MASK, FIRST_WORD, VOCAB_SIZE = 101, 102, 103, 999, 30522


def token_stream(source: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` token ids (int32): Zipf-distributed ids or the bundled books, repeated."""
    if source == "zipf":
        perm = rng.permutation(np.arange(FIRST_WORD, VOCAB_SIZE))
        ranks = rng.zipf(1.1, size)
        ranks = ranks[ranks <= perm.size]
        while ranks.size < size:
            more = rng.zipf(1.1, size)
            ranks = np.concatenate([ranks, more[more <= perm.size]])
        return perm[ranks[:size] - 1].astype(np.int32)
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(str(VOCAB), lowercase=True)
    texts = []
    for path in sorted((ROOT / "corpus" / "books").glob("*.txt")):
        raw = path.read_bytes()
        text = raw.decode("latin-1") if path.name.endswith("-8.txt") else raw.decode("utf-8-sig")
        texts += [p for p in text.split("\r\n\r\n") if p.strip()]
    ids = np.concatenate(
        [np.array(e.ids, np.int32) for e in tok.encode_batch(texts, False) if e.ids]
    )
    return np.resize(ids, size)


def build_arrays(source: str, seq_length: int, max_pred: int, count: int, seed: int = 0) -> dict:
    """Schema arrays for ``count`` instances (vectorised; see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = schema.empty_arrays(count, seq_length, max_pred)
    lengths = np.where(rng.random(count) < 0.1, rng.integers(5, seq_length + 1, count), seq_length)
    stream = token_stream(source, count * seq_length, rng)
    col = np.arange(seq_length)[None, :]
    real = col < lengths[:, None]
    ids = np.where(real, stream.reshape(count, seq_length), 0).astype(np.int32)
    split = rng.integers(1, lengths - 3)  # A holds tokens 1..split
    ids[:, 0] = CLS
    rows = np.arange(count)
    ids[rows, split + 1] = SEP
    ids[rows, lengths - 1] = SEP
    out[schema.INPUT_IDS][:] = ids
    out[schema.INPUT_MASK][:] = real
    out[schema.SEGMENT_IDS][:] = (col > split[:, None] + 1) & real
    out[schema.NEXT_SENTENCE_LABELS][:] = rng.integers(0, 2, count)
    special = (ids == CLS) | (ids == SEP) | ~real
    keys = np.where(special, np.inf, rng.random(ids.shape))
    n = np.minimum(max_pred, np.maximum(1, np.round(lengths * 0.15).astype(int)))
    picked = np.argsort(keys, axis=1)[:, :max_pred]
    used = np.arange(max_pred)[None, :] < n[:, None]
    positions = np.sort(np.where(used, picked, seq_length), axis=1)  # unused sort last
    positions = np.where(positions == seq_length, 0, positions).astype(np.int32)
    rr, cc = np.nonzero(positions)
    labels = np.zeros_like(positions)
    labels[rr, cc] = ids[rr, positions[rr, cc]]
    draw = rng.random(rr.size)
    stored = ids.copy()
    stored[rr, positions[rr, cc]] = np.where(
        draw < 0.8,
        MASK,
        np.where(draw < 0.9, rng.integers(FIRST_WORD, VOCAB_SIZE, rr.size), labels[rr, cc]),
    )
    out[schema.INPUT_IDS][:] = stored
    out[schema.MASKED_LM_POSITIONS][:] = positions
    out[schema.MASKED_LM_IDS][:] = labels
    return out


def measure(arrays: dict, directory: Path, reps: int, **kwargs) -> tuple[float, float, int]:
    """Median write and whole-shard read CPU seconds of this process, and file bytes.

    CPU time (``time.process_time``), not wall time: the machine is shared, and gzip in
    HDF5 is single-threaded, so CPU seconds are what a quiet core would take.
    """
    path = directory / "bench_training_0.hdf5"
    writes, reads = [], []
    for _ in range(reps):
        t0 = time.process_time()
        info = write_shard(path, arrays, **kwargs)
        writes.append(time.process_time() - t0)
        t0 = time.process_time()
        back = ShardReader(path).read_all()
        reads.append(time.process_time() - t0)
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)
    return statistics.median(writes), statistics.median(reads), info.bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=["zipf", "books", "both"], default="both")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--levels", default="0,1,4,6,9")
    parser.add_argument("--dir", help="where to write (default: a temp dir)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    sources = ["zipf", "books"] if args.source == "both" else [args.source]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        for source in sources:
            for phase, (seq_length, max_pred, count) in PHASES.items():
                t0 = time.perf_counter()
                arrays = build_arrays(source, seq_length, max_pred, count)
                raw = sum(v.nbytes for v in arrays.values())
                print(
                    f"\n{source} {phase}: {count} instances, {raw / count:.0f} raw bytes/instance, "
                    f"mean length {arrays['input_mask'].sum(1).mean():.1f} "
                    f"(built in {time.perf_counter() - t0:.1f} s)"
                )
                print(
                    f"{'level':>5} {'shuffle':>7} {'write s':>8} {'read s':>7} {'MB':>7} "
                    f"{'B/inst':>7} {'inst/s read':>11}  (CPU seconds)"
                )
                for level in levels:
                    for shuffle in (True, False):
                        w, r, size = measure(
                            arrays, directory, args.reps, compression_level=level, shuffle=shuffle
                        )
                        print(
                            f"{level:>5} {shuffle!s:>7} {w:8.3f} {r:7.3f} {size / 1e6:7.2f} "
                            f"{size / count:7.1f} {count / r:11.0f}"
                        )
                print("chunk sweep at the default level, shuffle on:")
                for chunk in (1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 30):
                    w, r, size = measure(arrays, directory, args.reps, chunk_bytes=chunk)
                    print(
                        f"  chunk {chunk >> 10:>7} KiB: write {w:.3f} s, read {r:.3f} s, "
                        f"{size / count:.1f} B/inst"
                    )


if __name__ == "__main__":
    main()
