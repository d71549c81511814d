"""Before and after the instances pipeline: phase directories, manifests, verification.

Runs in the launching process. Phase directories are local or remote through
:mod:`pipeline.common.fs`; verification reads shards with h5py and so runs for local outputs only
(run ``bertprep shards verify`` on a copy otherwise).
"""

from __future__ import annotations

import hashlib
import json
import sys

from ground.errors import UserError
from pipeline.common import fs
from pipeline.common.file_stage import sum_counts
from pipeline.common.run_report import DONE_MARKER
from pipeline.instances.types import InstancesSpec
from pipeline.vocab.files import (  # the one cross-stage import: the vocab files
    build_tokenizer,
    vocab_txt_bytes,
)
from sharding import manifest
from sharding.manifest import world_size_warning
from sharding.verify import verify_dir
from sharding.writer import ShardFile

PLANNED = "_config.json"  # the configuration a phase directory is being built with


def build_config(spec: InstancesSpec) -> dict:
    """The configuration recorded in each manifest (and compared on reruns).

    The vocab is identified by the sha256 of its tokens, not by its path, so a run directory
    that moved (or a gs:// copy) still matches.
    """

    vocab_sha = hashlib.sha256(vocab_txt_bytes(spec.vocab_tokens)).hexdigest()
    cfg = spec.configs[0]  # the options below are the same for every phase
    return {
        "dupe_factor": cfg.dupe_factor,
        "masked_lm_prob": cfg.masked_lm_prob,
        "short_seq_prob": cfg.short_seq_prob,
        "whole_word_mask": cfg.whole_word_mask,
        "no_nsp": cfg.no_nsp,
        "unmasked": cfg.unmasked,
        "classic": cfg.classic,
        "validation_fraction": spec.validation_fraction,
        "groups": spec.groups,
        "num_shards": spec.num_shards,
        "num_validation_shards": spec.num_val_shards,
        "gzip_level": spec.gzip_level,
        "lowercase": spec.lowercase,
        "strip_accents": spec.strip_accents,
        "seed": spec.seed,
        "inputs": "classic text (--input)" if spec.classic_input else "RUN/sentences",
        "inputs_sha256": spec.inputs_sha256,  # names and sizes of the input files
        "vocab_sha256": vocab_sha,
    }


def _phase_record(cfg, build: dict) -> dict:
    return {
        "seq_length": cfg.max_seq_length,
        "max_predictions": cfg.max_predictions_per_seq,
        **build,
    }


def prepare_phase_dirs(run_dir, configs, build: dict, tokens, lowercase, strip, overwrite):
    """Check, clear and set up each phase directory; returns the configs still to build.

    A complete directory built with the same configuration is skipped; one built with another
    configuration is refused unless ``overwrite``; an incomplete one with the same configuration
    keeps its finished shards (they are deterministic) and is completed.
    """

    todo = []
    for cfg in configs:
        out = fs.join(run_dir, cfg.phase)
        record = _phase_record(cfg, build)
        planned = _read_json(fs.join(out, PLANNED))
        existing = fs.list_files(fs.join(out, "*.hdf5"))
        same = planned == record
        if existing and not same and not overwrite:
            raise UserError(
                f"{out} holds shards of another configuration; pass --overwrite to replace them"
            )
        if same and fs.exists(fs.join(out, DONE_MARKER)):
            fs.delete(fs.stale_temps(out))  # a complete phase keeps its shards, not orphans
            continue
        if not same:
            fs.delete(fs.list_files(fs.join(out, "*")) + fs.stale_temps(out))
        fs.makedirs(out)
        fs.write_bytes(fs.join(out, "vocab.txt"), vocab_txt_bytes(tokens))
        tok_json = build_tokenizer(tokens, lowercase, strip).to_str(pretty=True) + "\n"
        fs.write_bytes(fs.join(out, "tokenizer.json"), tok_json.encode())
        fs.write_bytes(fs.join(out, PLANNED), json.dumps(record, sort_keys=True).encode())
        todo.append(cfg)
    for sub in ("tokens", "buckets"):
        fs.delete(fs.list_files(fs.join(run_dir, "tmp", sub, "**")))
    fs.delete(fs.list_files(fs.join(run_dir, "tmp", "problems.json")))
    return todo


def _read_json(path: str):
    if not fs.exists(path):
        return None
    with fs.open_read(path) as f:
        return json.loads(f.read().decode())


def _require_json(path: str):
    """A list the pipeline must have written (its ``Collect`` always emits, even empty): a missing
    file means a branch of the pipeline never ran, which is an error, never an empty list."""
    value = _read_json(path)
    if value is None:
        raise UserError(
            f"instances: {path} is missing: a branch of the pipeline did not run (a runner that "
            "computes only some leaves?); the shards cannot be listed, rerun the stage"
        )
    return value


def finish(run_dir: str, configs, build: dict, world_size: int | None) -> dict:
    """Write each phase's manifest, verify it, clean up; returns the stage report by phase."""

    problems = _read_json(fs.join(run_dir, "tmp", "problems.json"))
    if problems:
        raise UserError("; ".join(problems) + " (use fewer --num-shards or more input)")
    buckets = _require_json(fs.join(run_dir, "tmp", "buckets.json"))
    shards = _require_json(fs.join(run_dir, "tmp", "shards.json"))
    summary = {}
    for cfg in configs:
        mine = [s for s in shards if s["phase"] == cfg.phase]
        stats = sum_counts([b["stats"] for b in buckets if b["phase"] == cfg.phase])
        by_split = {
            sp: sum(s["count"] for s in mine if s["split"] == sp)
            for sp in ("training", "validation")
        }
        if by_split["training"] == 0:
            raise UserError(f"{cfg.phase}: no training instances (is the corpus empty?)")
        out = fs.join(run_dir, cfg.phase)
        _write_manifest(out, cfg, build, mine, stats)
        warning = _verify(out, sum(1 for s in mine if s["split"] == "training"), world_size)
        summary[cfg.phase] = {
            **by_split,
            "shards": len(mine),
            "stats": stats,
            **({"warning": warning} if warning else {}),
        }
        fs.delete(fs.stale_temps(out))  # left by an interrupted earlier run; nothing writes now
        fs.write_bytes(fs.join(out, DONE_MARKER), b"")
    for sub in ("tokens", "buckets"):
        fs.delete(fs.list_files(fs.join(run_dir, "tmp", sub, "**")))
    return summary


def _write_manifest(out: str, cfg, build: dict, shards: list[dict], stats: dict) -> None:

    data = {}
    for name in ("vocab.txt", "tokenizer.json"):
        with fs.open_read(fs.join(out, name)) as src:
            data[name] = src.read()
    m = manifest.build_manifest(
        seq_length=cfg.max_seq_length,
        max_predictions=cfg.max_predictions_per_seq,
        masked=not cfg.unmasked,
        nsp=not cfg.no_nsp,
        shards=[
            (s["split"], ShardFile(s["file"], s["count"], s["sha256"], s["bytes"])) for s in shards
        ],
        vocab=manifest.vocab_info_bytes("vocab.txt", data["vocab.txt"]),
        seed=build["seed"],
        config=_phase_record(cfg, build),
        report=stats,
        tokenizer=manifest.file_info_bytes("tokenizer.json", data["tokenizer.json"]),
    )
    fs.write_bytes(fs.join(out, "manifest.json"), manifest.dumps(m).encode())


def _verify(out: str, n_train: int, world_size: int | None) -> str | None:
    """Final check of a phase directory: :func:`sharding.verify.verify_dir`, listing only.

    Every shard's content was verified by the worker that wrote it (``verify_shard``, in
    parallel); here the launcher checks what ties the directory together: each listed shard
    exists with the manifest's size and sha256, no stray shard, vocab and tokenizer checksums.
    ``bertprep shards verify`` re-runs the full check on any copy.
    """

    if "://" in out:
        print(
            f"instances: {out} is remote; verify a local copy with bertprep shards verify",
            file=sys.stderr,
        )
    else:
        problems = verify_dir(out, listing_only=True)
        if problems:
            shown = "; ".join(str(p) for p in problems[:10])
            raise UserError(f"verification of {out} failed: {shown}")
    warning = world_size_warning(n_train, world_size)
    if warning:
        print(f"instances: warning: {warning}", file=sys.stderr)
    return warning
