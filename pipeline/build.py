"""Every data stage from raw inputs to verified shards, into one run directory.

Runs extract -> segment -> vocab -> instances (both phases unless --max-seq-length) with the
flags of each stage. A rerun skips stages that completed (each writes a _SUCCESS marker last)
and, inside the instances stage, keeps finished shards; since every stage is deterministic, a
killed build rerun ends with byte-identical shards. --overwrite redoes every stage.

A completed stage is skipped only if it was made from the same inputs (names and sizes of
the raw input files) and the same options of that stage: build records a fingerprint of
both per stage in RUN/report.json, and a rerun that differs is refused with a clear message
instead of reusing stale outputs. Once a stage runs, every later stage runs too.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time

from ground.errors import UserError
from pipeline.common import fs, run_report
from pipeline.common.run_report import DONE_MARKER
from pipeline.extract import cli as extract_cli
from pipeline.extract.units import list_inputs
from pipeline.instances import cli as instances_cli
from pipeline.segment import cli as segment_cli
from pipeline.vocab import cli as vocab_cli


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


def stage_options(name: str, args: argparse.Namespace):
    """The typed options a skippable stage runs with (instances checks its own)."""
    module = {"extract": extract_cli, "segment": segment_cli, "vocab": vocab_cli}[name]
    return module.options_from_args(args)


def stage_fingerprint(name: str, args: argparse.Namespace) -> str:
    """Hex digest of a stage's options dataclass and, for extract, the raw input files it reads
    (kind, path relative to its root, size: the same for a local and a gs:// copy)."""

    described = dataclasses.asdict(stage_options(name, args))
    if name == "extract":
        found = list_inputs(args.wikipedia or [], args.books or [], args.corpus or [])
        described["inputs"] = [[source, f.relpath, f.size] for source, f in found]
    blob = json.dumps(described, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _record(run_dir: str, **updates) -> None:
    """Merge ``updates`` into RUN/report.json's ``build`` section (dicts merged one level)."""
    build = dict(run_report.load_json(fs.join(run_dir, "report.json")).get("build", {}))
    for key, value in updates.items():
        build[key] = {**build.get(key, {}), **value}
    run_report.update_run_report(run_dir, "build", build)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    if not (args.wikipedia or args.books or args.corpus):
        raise UserError("give at least one input: --wikipedia, --books or --corpus")
    run_dir = args.output.rstrip("/")
    recorded = run_report.load_json(fs.join(run_dir, "report.json")).get("build", {})
    recorded = recorded.get("fingerprints", {})
    timings = {}
    upstream_ran = False  # once a stage runs, later stages' outputs are stale
    for name, module, done_dir in STAGES:
        fingerprint = stage_fingerprint(name, args) if done_dir else ""
        done = done_dir and fs.exists(fs.join(run_dir, done_dir, DONE_MARKER))
        if done and not (args.overwrite or upstream_ran):
            if recorded.get(name, fingerprint) != fingerprint:
                raise UserError(
                    f"{run_dir}/{done_dir} was made from other inputs or other {name} options "
                    "than this build's; pass --overwrite to redo the build (or use a new --output)"
                )
            print(f"build: {name} already complete, skipped", file=sys.stderr)
            for sub in (done_dir, "rejected") if name == "extract" else (done_dir,):
                fs.delete(fs.stale_temps(fs.join(run_dir, sub)))  # an interrupted run's
            continue
        stage_args = argparse.Namespace(**vars(args))
        stage_args.overwrite = args.overwrite or upstream_ran
        if name == "instances":
            stage_args.input, stage_args.vocab = [], None  # RUN/sentences, RUN/vocab
        print(f"build: {name}", file=sys.stderr)
        t0 = time.perf_counter()
        rc = module.run(stage_args, extra)
        timings[name] = round(time.perf_counter() - t0, 1)
        if rc:
            return rc
        upstream_ran = True
        if fingerprint:  # a dry run never gets here (DryRun ends the build)
            _record(run_dir, fingerprints={name: fingerprint})
    if timings:  # wall seconds of the stages this invocation ran (skipped ones keep theirs)
        _record(run_dir, seconds=timings)
    print(f"build: done -> {run_dir} (seconds per stage: {timings})")
    return 0
