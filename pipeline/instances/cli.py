"""Build masked-LM / next-sentence instances into balanced HDF5 shards (NVIDIA's BERT schema).

Reads RUN/sentences (from bertprep segment), or with --input the classic
create_pretraining_data.py format (one sentence per line, a blank line between documents), and
the vocab in RUN/vocab (or --vocab). Without --max-seq-length one tokenization pass writes both
phases: RUN/seq128 (max predictions 20) and RUN/seq512 (80). Each phase directory holds
shard_training_NNNNN.hdf5 (equal instance counts, at most 1 apart), shard_validation_NNNNN.hdf5,
vocab.txt, tokenizer.json and manifest.json, and is verified at the end.

Google's algorithm with three documented deviations that remove its biases (short target drawn
per instance; a one-sentence chunk is not forced to a random next; random replacement tokens
exclude [unusedN] and specials); --classic restores Google's exact behaviour. Every random choice
derives from (--seed, document id, dupe index): the shards do not depend on the runner, the
worker count or the input order.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from pipeline.instances.stage import InstancesOptions, run_instances


def add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    """Instance flags shared by ``instances`` and ``build`` (Google's names where they exist)."""
    g = parser.add_argument_group("instances")
    g.add_argument(
        "--max-seq-length",
        type=int,
        help="one phase of this length (default: both seq 128 and seq 512)",
    )
    g.add_argument(
        "--max-predictions-per-seq",
        type=int,
        help="masked positions per instance (default 20 for 128, 80 for 512, else ceil(0.15 L))",
    )
    g.add_argument(
        "--dupe-factor",
        type=int,
        default=5,
        help="passes over each document with different masks (default 5)",
    )
    g.add_argument("--masked-lm-prob", type=float, default=0.15, help="default 0.15")
    g.add_argument(
        "--short-seq-prob",
        type=float,
        default=0.1,
        help="probability of a shorter target length (default 0.1)",
    )
    g.add_argument("--seed", type=int, default=12345, help="random seed (default 12345)")
    g.add_argument(
        "--num-shards",
        type=int,
        help="training shards per phase (default: about 32768 instances each)",
    )
    g.add_argument(
        "--num-validation-shards",
        type=int,
        default=1,
        help="validation shards per phase (default 1)",
    )
    g.add_argument(
        "--validation-fraction",
        type=float,
        default=0.01,
        help="fraction of documents (chosen by id) whose instances go to validation "
        "shards (default 0.01)",
    )
    g.add_argument(
        "--group-tokens",
        type=int,
        default=2_000_000,
        help="tokens per random-next group (default 2000000; see docs/architecture.md)",
    )
    g.add_argument("--whole-word-mask", action="store_true", help="mask whole words")
    g.add_argument(
        "--no-nsp",
        action="store_true",
        help="MLM only: [CLS] text [SEP], contiguous segments, no next-sentence task",
    )
    g.add_argument(
        "--unmasked",
        action="store_true",
        help="store no masks (the loader masks dynamically); no masked_lm_* datasets",
    )
    g.add_argument(
        "--classic", action="store_true", help="Google's exact behaviour, known biases included"
    )
    g.add_argument(
        "--gzip-level",
        type=int,
        default=1,
        help="shard compression 0-9 (default 1: 3%% larger than 4, 1.5x faster)",
    )
    g.add_argument(
        "--world-size", type=int, help="GPUs you will train on: warn when there are fewer shards"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_instance_arguments(parser)
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH_OR_GLOB",
        help="classic text files instead of RUN/sentences; repeatable",
    )
    parser.add_argument(
        "--vocab",
        metavar="PATH",
        help="vocab.txt or tokenizer.json (default: RUN/vocab/tokenizer.json)",
    )
    parser.add_argument(
        "--cased",
        action="store_true",
        help="with a vocab.txt --vocab: do not lowercase (default: lowercase)",
    )
    parser.add_argument("--output", required=True, metavar="RUN", help="run directory")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace shards built with another configuration"
    )


def options_from_args(args: argparse.Namespace) -> InstancesOptions:
    """The stage's options from parsed flags (validated by :func:`run_instances`)."""
    values = {f.name: getattr(args, f.name) for f in fields(InstancesOptions)}
    values["input"] = tuple(values["input"] or ())
    return InstancesOptions(**values)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    summary = run_instances(options_from_args(args), args.output.rstrip("/"), args.overwrite, extra)
    if summary:
        counts = {
            p: {k: v for k, v in s.items() if k in ("training", "validation", "shards")}
            for p, s in summary.items()
        }
        print(json.dumps(counts, indent=1, sort_keys=True))
    return 0
