"""Verify or inspect a shard directory.

bertprep shards verify DIR [--vocab vocab.txt] [--world-size N]
    Checks schema, dtypes, shapes, ids against the vocab, mask/segment layout, masked
    positions, and counts and sha256 against manifest.json. Exit 0 when valid, 1 with one
    line per problem ("FILE: problem") otherwise.
bertprep shards inspect DIR [--examples N] [--json]
    Counts, length histogram, NSP balance, masked-count distribution, the 80/10/10 split
    estimate and decoded examples.
"""

from __future__ import annotations

import argparse
import json
import sys

from sharding import manifest as mf
from sharding.inspect import format_summary, inspect_dir
from sharding.reader import ShardSet
from sharding.verify import verify_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-actions ``verify`` and ``inspect``, each taking the shard directory."""
    sub = parser.add_subparsers(dest="action", required=True)
    verify = sub.add_parser("verify", help="check a shard directory; non-zero exit on problems")
    verify.add_argument("directory", help="shard directory (holds manifest.json, vocab.txt)")
    verify.add_argument("--vocab", help="vocab.txt to check ids against (default DIR/vocab.txt)")
    verify.add_argument(
        "--world-size", type=int, help="ranks you will train on: warn if there are fewer shards"
    )
    inspect = sub.add_parser("inspect", help="statistics and decoded examples")
    inspect.add_argument("directory", help="shard directory to summarise")
    inspect.add_argument("--vocab", help="vocab.txt for decoding (default DIR/vocab.txt)")
    inspect.add_argument("--examples", type=int, default=3, help="instances to decode (3)")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Run the chosen action; returns the exit code (1 = verification found problems)."""
    if args.action == "verify":
        problems = verify_dir(args.directory, args.vocab)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"{args.directory}: {len(problems)} problem(s)", file=sys.stderr)
            return 1
        shards = ShardSet.open(args.directory)
        warning = mf.world_size_warning(len(shards.training), args.world_size)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        total = sum(shards.counts()) + sum(shards.counts("validation"))
        print(
            f"{args.directory}: OK ({len(shards.training)} training + {len(shards.validation)} "
            f"validation shards, {total} instances, seq length {shards.seq_length})"
        )
        return 0
    summary = inspect_dir(args.directory, args.examples, args.vocab)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
