"""Instance throughput: classic-format books -> ids -> MLM/NSP instances -> padded arrays.

Usage (from the repo root):

    .venv/bin/python benchmarks/bench_instances.py [--copies 1] [--profile] [--instances-path]
        [--max-seq-length 128 --max-predictions 20]

Input: the 17 Gutenberg books of ../shared/corpora/books/gutenberg, header/footer stripped,
paragraphs unwrapped, NLTK Punkt sentences, one book = one document, written in the classic
sentence-per-line format (``--copies N`` writes N distinct files, i.e. N x the books). Settings:
seq 128, max_pred 20, dupe 5, bert-base-uncased. Single process, all documents in one group.
Prints start-up, per-stage wall and CPU seconds, instances/s and peak RSS. No HDF5 is written.
CPU seconds are the figure to compare on a shared machine: wall time counts other processes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
CLASSIC_RATE = 1900.0  # instances/s of a classic pure-Python builder on this machine (issue 4)


class Clock:
    """Accumulates wall and CPU seconds per stage."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, name: str, w0: float, c0: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w0
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c0


def prepare(out_dir: Path, copies: int) -> list[Path]:
    """Write the books in the classic format, ``copies`` distinct files."""
    sys.path.insert(0, str(ROOT))
    from pipeline.instances.classic_format import write_documents
    from tests.pipeline.instances.test_types import book_sentences

    books = book_sentences(SHARED / "books" / "gutenberg", SHARED / "nltk_data")
    paths = []
    for c in range(copies):
        path = out_dir / f"books-{c}.txt"
        write_documents([s for _, s in books], str(path))
        paths.append(path)
    return paths


def run(paths: list[Path], instances_path: bool, seq: int, pred: int) -> tuple[int, Clock]:
    clock = Clock()
    w0, c0 = time.perf_counter(), time.process_time()
    from pipeline.instances import builder as inst_mod
    from pipeline.instances.builder import FlatDoc, InstanceConfig, VocabInfo, build_group_batches
    from pipeline.instances.classic_format import read_file
    from pipeline.instances.tokenize import FastWordPiece
    from sharding.pack import pack_instances

    vocab_path = str(ROOT / "corpus" / "vocab" / "bert-base-uncased-vocab.txt")
    fw = FastWordPiece.from_vocab_file(vocab_path, lowercase=True)
    vocab = VocabInfo.from_vocab_file(vocab_path)
    cfg = InstanceConfig(max_seq_length=seq, max_predictions_per_seq=pred, dupe_factor=5)
    clock.add("start-up (imports, tokenizer, vocab)", w0, c0)

    w0, c0 = time.perf_counter(), time.process_time()
    docs = []
    for p in paths:
        for did, sents in read_file(str(p), relpath=p.name):
            docs.append(FlatDoc(did, *fw.encode_document(sents)))
    clock.add("read + tokenize", w0, c0)

    finish = inst_mod.finish_block

    def timed_finish(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        out = finish(*a, **k)
        clock.add("gather + mask (finish_block)", w, c)
        return out

    inst_mod.finish_block = timed_finish
    n = 0
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        if instances_path:
            records, _ = inst_mod.build_group_instances(docs, cfg, vocab, seed=12345)
            w, c = time.perf_counter(), time.process_time()
            pack_instances(records, seq, pred)
            clock.add("pack_instances(list[Instance])", w, c)
            n = len(records)
        else:
            for batch, _ in build_group_batches(docs, cfg, vocab, seed=12345):
                w, c = time.perf_counter(), time.process_time()
                batch.arrays()
                clock.add("arrays (NVIDIA schema)", w, c)
                n += len(batch)
    finally:
        inst_mod.finish_block = finish
    clock.add("build total", w0, c0)
    return n, clock


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--copies", type=int, default=1, help="distinct copies of the 17 books")
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--max-predictions", type=int, default=20)
    ap.add_argument("--prepare-only", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true", help="print the top functions by time")
    ap.add_argument(
        "--instances-path",
        action="store_true",
        help="build list[Instance] + sharding's pack_instances instead of array batches",
    )
    args = ap.parse_args()
    if args.prepare_only:
        prepare(Path(args.prepare_only), args.copies)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        # A child process prepares the input, so this one measures start-up from cold imports
        # and its peak RSS is the builder's alone.
        cmd = [sys.executable, __file__, "--prepare-only", tmp, "--copies", str(args.copies)]
        subprocess.run(cmd, check=True)
        paths = sorted(Path(tmp).glob("books-*.txt"))
        mb = sum(p.stat().st_size for p in paths) / 1e6
        prof = cProfile.Profile() if args.profile else None
        if prof:
            prof.enable()
        n, clock = run(paths, args.instances_path, args.max_seq_length, args.max_predictions)
        if prof:
            prof.disable()
    startup = "start-up (imports, tokenizer, vocab)"
    work_wall = sum(v for k, v in clock.wall.items() if k in ("read + tokenize", "build total"))
    work_cpu = sum(v for k, v in clock.cpu.items() if k in ("read + tokenize", "build total"))
    print(
        f"input: {len(paths)} file(s), {mb:.1f} MB classic format; {n} instances "
        f"(seq {args.max_seq_length}, max_pred {args.max_predictions}, dupe 5)"
    )
    for k in clock.wall:
        print(f"  {k:<40} wall {clock.wall[k]:7.2f} s   cpu {clock.cpu[k]:7.2f} s")
    print("  (structural pass = build total - finish_block - arrays; start-up excluded below)")
    print(f"instances/s after start-up: wall {n / work_wall:,.0f}   cpu {n / work_cpu:,.0f}")
    print(
        f"vs classic {CLASSIC_RATE:,.0f}/s: wall x{n / work_wall / CLASSIC_RATE:.1f}"
        f"   cpu x{n / work_cpu / CLASSIC_RATE:.1f}"
    )
    print(f"start-up: {clock.wall[startup]:.2f} s wall")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MiB")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
