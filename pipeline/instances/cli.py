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
import dataclasses
import hashlib
import json
import sys

from ground.errors import UserError
from pipeline.common import beam_runner, fs, run_report
from pipeline.common.file_stage import input_files as stage_files
from pipeline.instances import finish
from pipeline.instances.plan import CHARS_PER_TOKEN, num_groups
from pipeline.instances.transforms import BuildShards
from pipeline.instances.types import InstanceConfig, InstancesSpec
from pipeline.vocab.files import load_vocab  # the one cross-stage import: the vocab files

DEFAULT_PHASES = ((128, 20), (512, 80))


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


def phase_configs(args) -> list:
    """One InstanceConfig per phase."""

    if args.max_seq_length:
        default_p = dict(DEFAULT_PHASES).get(
            args.max_seq_length, -(-args.max_seq_length * 15 // 100)
        )
        phases = [(args.max_seq_length, args.max_predictions_per_seq or default_p)]
    else:
        if args.max_predictions_per_seq:
            raise UserError("--max-predictions-per-seq needs --max-seq-length")
        phases = list(DEFAULT_PHASES)
    return [
        InstanceConfig(
            max_seq_length=seq,
            max_predictions_per_seq=p,
            dupe_factor=args.dupe_factor,
            masked_lm_prob=args.masked_lm_prob,
            short_seq_prob=args.short_seq_prob,
            whole_word_mask=args.whole_word_mask,
            no_nsp=args.no_nsp,
            unmasked=args.unmasked,
            classic=args.classic,
        )
        for seq, p in phases
    ]


def resolve_vocab(args, run_dir: str) -> tuple[list[str], bool, bool | None, str]:
    """(tokens, lowercase, strip_accents, source path) of the vocab to tokenize with."""

    path = args.vocab
    if not path:
        path = fs.join(run_dir, "vocab", "tokenizer.json")
        if not fs.exists(path):
            raise UserError(f"no vocab: run bertprep vocab first or pass --vocab ({path})")
    loaded = load_vocab(path)
    lowercase = loaded.lowercase if loaded.lowercase is not None else not args.cased
    if path.endswith(".json"):
        beside = path[: -len("tokenizer.json")] + "vocab.txt"
        if fs.exists(beside) and load_vocab(beside).tokens != loaded.tokens:
            raise UserError(f"{path} and {beside} hold different vocabularies")
    return loaded.tokens, lowercase, loaded.strip_accents, path


def input_files(args, run_dir: str) -> tuple[list[str], int, str, dict[str, str]]:
    """(sorted input paths, estimated tokens, sha256 of the inputs' names and sizes,
    {path: relpath} of classic inputs, empty for RUN/sentences).

    The fingerprint goes into the build config, so a rerun on other inputs is not mistaken
    for a finished build; names are relative (the relpath of a classic file, the file name
    in RUN/sentences) so a moved run directory or a gs:// copy still matches.
    """

    if args.input:
        found = {f.path: f for p in args.input for f in fs.expand(p)}
        files = sorted(found)
        rel = classic_relpaths(found)
        sizes = [(rel[p], found[p].size) for p in files]
        est = int(sum(s for _, s in sizes) / CHARS_PER_TOKEN)
        return files, est, _fingerprint(sizes), rel

    files = stage_files(run_dir, "sentences", "sentences")
    listed = fs.expand(fs.join(run_dir, "sentences", "*.parquet"))
    sizes = [(f.relpath, f.size) for f in listed]
    chars = run_report.load_json(fs.join(run_dir, "report.json")).get("segment", {}).get("chars")
    if chars is None:
        chars = sum(size for _, size in sizes) * 3
    return files, int(chars / CHARS_PER_TOKEN), _fingerprint(sizes), {}


def _fingerprint(named_sizes: list[tuple[str, int]]) -> str:
    text = "".join(f"{name}\t{size}\n" for name, size in sorted(named_sizes))
    return hashlib.sha256(text.encode()).hexdigest()


def classic_relpaths(found: dict) -> dict[str, str]:
    """{path: the relpath that seeds its document ids} for classic text inputs.

    The path relative to its pattern's root (``out/*/wiki_*`` gives ``AA/wiki_00``), so a
    ``gs://`` copy gets the same ids; when two inputs would share one (the same name under two
    ``--input`` roots), every path is taken relative to the inputs' common directory instead.
    """
    rel = {path: f.relpath for path, f in found.items()}
    if len(set(rel.values())) == len(rel):
        return rel
    parts = [p.split("/") for p in rel]
    common = 0
    while all(len(q) > common + 1 and q[common] == parts[0][common] for q in parts):
        common += 1
    return {p: "/".join(p.split("/")[common:]) for p in rel}


def run(args: argparse.Namespace, extra: list[str]) -> int:

    run_dir = args.output.rstrip("/")
    beam_runner.check_args(extra)
    configs = phase_configs(args)
    if (args.num_shards is not None and args.num_shards < 1) or args.num_validation_shards < 1:
        raise UserError("--num-shards and --num-validation-shards must be at least 1")
    if not 0.0 <= args.validation_fraction < 0.5:
        raise UserError("--validation-fraction must be in [0, 0.5)")
    tokens, lowercase, strip, _ = resolve_vocab(args, run_dir)
    files, est_tokens, inputs_sha, relpaths = input_files(args, run_dir)
    spec = InstancesSpec(
        run_dir=run_dir,
        configs=tuple(configs),
        seed=args.seed,
        vocab_tokens=tuple(tokens),
        lowercase=lowercase,
        strip_accents=strip,
        validation_fraction=args.validation_fraction,
        groups=_groups(est_tokens, args.group_tokens),
        num_shards=args.num_shards,
        num_val_shards=args.num_validation_shards,
        gzip_level=args.gzip_level,
        relpaths=relpaths,
        inputs_sha256=inputs_sha,
        classic_input=bool(args.input),
    )
    build_config = finish.build_config(spec)
    if beam_runner.is_dry_run(extra):  # a dry run changes nothing
        todo = configs
    else:
        todo = finish.prepare_phase_dirs(
            run_dir, configs, build_config, tokens, lowercase, strip, args.overwrite
        )
    if not todo:
        print("instances: every phase is already complete", file=sys.stderr)
        return 0
    spec = dataclasses.replace(spec, configs=tuple(todo))
    _run_pipeline(files, spec, extra)
    summary = finish.finish(run_dir, todo, build_config, args.world_size)
    run_report.update_run_report(run_dir, "instances", summary)
    print(
        json.dumps(
            {
                p: {k: v for k, v in s.items() if k in ("training", "validation", "shards")}
                for p, s in summary.items()
            },
            indent=1,
            sort_keys=True,
        )
    )
    return 0


def _groups(est_tokens: int, group_tokens: int) -> int:

    if group_tokens < 1000:
        raise UserError("--group-tokens must be at least 1000")
    return num_groups(est_tokens, group_tokens)


def _run_pipeline(files: list[str], spec: InstancesSpec, extra: list[str]) -> None:
    import apache_beam as beam  # Beam (~1 s): only once a pipeline is built

    inputs = list(enumerate(files))
    beam_runner.run(
        lambda p: p | "Inputs" >> beam.Create(inputs) | "Build" >> BuildShards(spec), extra
    )
