"""The instances stage: RUN/sentences (or classic text) + the vocab -> RUN/seq128, RUN/seq512.

:func:`run_instances` resolves the vocab and the inputs, builds the :class:`InstancesSpec`,
prepares the phase directories (keeping finished shards on a rerun), runs
:class:`pipeline.instances.transforms.BuildShards`, then writes manifests and verifies
(:mod:`pipeline.instances.finish`). What the shards hold and the algorithm's deviations from
Google's: :mod:`pipeline.instances.cli` (the command's help) and docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from dataclasses import dataclass

from ground.errors import UserError
from pipeline.common import beam_runner, fs, run_report
from pipeline.common.file_stage import input_files as stage_files
from pipeline.common.parquet_io import column_names
from pipeline.instances import finish
from pipeline.instances.plan import CHARS_PER_TOKEN, num_groups
from pipeline.instances.transforms import BuildShards
from pipeline.instances.types import InstanceConfig, InstancesSpec
from pipeline.vocab.files import load_vocab  # the one cross-stage import: the vocab files

DEFAULT_PHASES = ((128, 20), (512, 80))


@dataclass(frozen=True)
class InstancesOptions:
    """Options of the instances stage: one field per flag of ``instances.cli`` (argparse names).

    Attributes:
        input: classic one-sentence-per-line files (paths or globs) instead of RUN/sentences.
        vocab: vocab.txt or tokenizer.json (None: RUN/vocab/tokenizer.json).
        cased: with a vocab.txt: do not lowercase.
        max_seq_length, max_predictions_per_seq: one phase only (None: seq128 + seq512).
        dupe_factor, masked_lm_prob, short_seq_prob, whole_word_mask, no_nsp, unmasked,
            classic: Google's flags (see :class:`pipeline.instances.types.InstanceConfig`).
        seed: the build seed. num_shards (None: automatic), num_validation_shards,
            validation_fraction (by document id hash, in [0, 0.5)), group_tokens (tokens per
            next-sentence group, >= 1000), gzip_level (0-9), world_size (warn when training
            shards do not divide among this many ranks).
    """

    input: tuple[str, ...] = ()
    vocab: str | None = None
    cased: bool = False
    max_seq_length: int | None = None
    max_predictions_per_seq: int | None = None
    dupe_factor: int = 5
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    seed: int = 12345
    num_shards: int | None = None
    num_validation_shards: int = 1
    validation_fraction: float = 0.01
    group_tokens: int = 2_000_000
    whole_word_mask: bool = False
    no_nsp: bool = False
    unmasked: bool = False
    classic: bool = False
    gzip_level: int = 1
    world_size: int | None = None


def phase_configs(args: InstancesOptions) -> list:
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


def resolve_vocab(args: InstancesOptions, run_dir: str) -> tuple[list[str], bool, bool | None, str]:
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


def input_files(args: InstancesOptions, run_dir: str) -> tuple[list[str], int, str, dict[str, str]]:
    """(sorted input paths, estimated tokens, sha256 of the inputs' names and sizes,
    {path: relpath} of classic inputs, empty for RUN/sentences).

    The fingerprint goes into the build config, so a rerun on other inputs is not mistaken
    for a finished build; names are relative (the relpath of a classic file, the file name
    in RUN/sentences) so a moved run directory or a gs:// copy still matches.
    """

    if args.input:
        found = {f.path: f for p in args.input for f in fs.expand(p)}
        files = sorted(found)
        for path in files:
            _check_sentences_file(path)
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


def _check_sentences_file(path: str) -> None:
    """A Parquet ``--input`` must be a sentences file (``id``, ``paragraphs``): say what it is
    in the launcher, not with a KeyError inside a worker."""
    if not path.endswith(".parquet"):
        return
    names = column_names(path)
    if names is None:
        raise UserError(f"--input {path}: not a readable Parquet file")
    missing = [c for c in ("id", "paragraphs") if c not in names]
    if missing:
        kind = (
            "a documents file (RUN/docs: run bertprep segment on it first)"
            if "text" in names
            else "not a sentences file"
        )
        raise UserError(
            f"--input {path}: columns {names} lack {missing}: {kind}; instances reads "
            "RUN/sentences/*.parquet or classic one-sentence-per-line text"
        )


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


def run_instances(args: InstancesOptions, run_dir: str, overwrite: bool, extra: list[str]) -> dict:
    """Build every phase still to build into RUN/seqL; returns the stage report by phase
    (``{}`` when every phase was already complete). ``extra``: Beam pipeline arguments."""

    beam_runner.check_args(extra)
    configs = phase_configs(args)
    if (args.num_shards is not None and args.num_shards < 1) or args.num_validation_shards < 1:
        raise UserError("--num-shards and --num-validation-shards must be at least 1")
    if not 0.0 <= args.validation_fraction < 0.5:
        raise UserError("--validation-fraction must be in [0, 0.5)")
    if not 0 <= args.gzip_level <= 9:  # checked before any tokenizing, not at the first shard
        raise UserError(f"--gzip-level must be 0..9, got {args.gzip_level}")
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
            run_dir, configs, build_config, tokens, lowercase, strip, overwrite
        )
    if not todo:
        print("instances: every phase is already complete", file=sys.stderr)
        return {}
    spec = dataclasses.replace(spec, configs=tuple(todo))
    _run_pipeline(files, spec, extra)
    summary = finish.finish(run_dir, todo, build_config, args.world_size)
    run_report.update_run_report(run_dir, "instances", summary)
    return summary


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
