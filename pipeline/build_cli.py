"""Every data stage from raw inputs to verified shards, into one run directory.

Runs extract -> segment -> vocab -> instances (both phases unless --max-seq-length) with the
flags of each stage. A rerun skips stages that completed (each writes a _SUCCESS marker last)
and, inside the instances stage, keeps finished shards; since every stage is deterministic, a
killed build rerun ends with byte-identical shards. --overwrite redoes every stage.
"""

from __future__ import annotations

import argparse
import sys
import time

from bertprep.errors import UserError
from pipeline import extract_cli, fs, instances_cli, report, segment_cli, vocab_cli


def add_arguments(parser: argparse.ArgumentParser) -> None:
    extract_cli.add_input_arguments(parser)
    segment_cli.add_segment_arguments(parser)
    vocab_cli.add_vocab_arguments(parser)
    instances_cli.add_instance_arguments(parser)
    parser.add_argument("--output", required=True, metavar="RUN", help="run directory")
    parser.add_argument(
        "--overwrite", action="store_true", help="redo every stage, even those already complete"
    )


STAGES = (
    ("extract", extract_cli, "docs"),
    ("segment", segment_cli, "sentences"),
    ("vocab", vocab_cli, "vocab"),
    ("instances", instances_cli, None),
)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    if not (args.wikipedia or args.books or args.corpus):
        raise UserError("give at least one input: --wikipedia, --books or --corpus")
    run_dir = args.output.rstrip("/")
    timings = {}
    for name, module, done_dir in STAGES:
        if done_dir and not args.overwrite and fs.exists(fs.join(run_dir, done_dir, "_SUCCESS")):
            print(f"build: {name} already complete, skipped", file=sys.stderr)
            continue
        stage_args = argparse.Namespace(**vars(args))
        if name == "instances":
            stage_args.input, stage_args.vocab = [], None  # RUN/sentences, RUN/vocab
        print(f"build: {name}", file=sys.stderr)
        t0 = time.perf_counter()
        rc = module.run(stage_args, extra)
        timings[name] = round(time.perf_counter() - t0, 1)
        if rc:
            return rc
    if timings:  # wall seconds of the stages this invocation ran (skipped ones keep theirs)
        before = report.load_json(fs.join(run_dir, "report.json")).get("build", {})
        seconds = {**before.get("seconds", {}), **timings}
        report.update_run_report(run_dir, "build", {"seconds": seconds})
    print(f"build: done -> {run_dir} (seconds per stage: {timings})")
    return 0
