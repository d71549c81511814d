"""Are the outputs the same as before a refactor? sha256 of every data file + the loss curve.

    .venv/bin/python benchmarks/golden_outputs.py --record benchmarks/golden/outputs.json
    .venv/bin/python benchmarks/golden_outputs.py --check benchmarks/golden/outputs.json

Runs the demo's ``build`` (the bundled corpus through extract -> segment -> vocab -> instances
at 128 and 512, the demo's exact flags) and the first ``--steps`` steps of its phase-1
pretraining (tiny, ``cpu`` recipe, 2 threads), then records

- the sha256 of every file the data stages write (docs, sentences, vocab, seq128 and seq512
  shards and manifests; run-report files that hold wall times are left out, and named),
- the per-step loss, MLM loss and accuracy of phase 1 (exact floats), and the sha256 of the
  model weights after the last step.

``--check`` compares with a recorded file and lists every difference (exit 1 if any). Loss
floats are only comparable on the same machine and torch build: they were recorded before the
issue-16 moves on this box, and a check elsewhere should ``--record`` first on the old commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Files whose content is a wall time or a host detail, not an output of the data.
VOLATILE = ("report.json", "build.json", "timings", "_SUCCESS")


def _volatile(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(v in name for v in VOLATILE) or "/tmp/" in f"/{rel}"


def file_hashes(run: Path) -> tuple[dict[str, str], list[str]]:
    """sha256 of every data file under ``run`` (relative path -> hex), and the skipped names."""
    hashes, skipped = {}, []
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        rel = path.relative_to(run).as_posix()
        if rel.startswith("phase1/"):
            continue
        if _volatile(rel):
            skipped.append(rel)
            continue
        hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes, skipped


def weights_hash(checkpoint: Path) -> str:
    """sha256 over the model tensors of a checkpoint, in key order (bytes, dtype, shape)."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def collect(work: Path, steps: int) -> dict:
    from bertprep.cli import main as bertprep
    from bertprep.demo import stages

    run = work / "run"
    plan = dict(stages(str(run), fast=False))
    if bertprep(plan["build"]) != 0:
        sys.exit("golden_outputs: build failed")
    train = [a for a in plan["pretrain phase 1"]]
    for flag in ("--max-steps", "--total-steps"):
        train[train.index(flag) + 1] = str(steps)
    if bertprep(train) != 0:
        sys.exit("golden_outputs: phase 1 failed")
    hashes, skipped = file_hashes(run)
    rows = [json.loads(x) for x in (run / "phase1" / "metrics.jsonl").read_text().splitlines()]
    curve = [
        {k: r[k] for k in ("step", "loss", "mlm_loss", "mlm_acc")} for r in rows if "loss" in r
    ]
    ckpt = sorted((run / "phase1" / "checkpoints").glob("ckpt-*.pt"))[-1]
    return {
        "files": hashes,
        "not_compared": skipped,
        "phase1_steps": steps,
        "phase1_curve": curve,
        "phase1_weights_sha256": weights_hash(ckpt),
    }


def differences(old: dict, new: dict) -> list[str]:
    out = []
    for rel in sorted(set(old["files"]) | set(new["files"])):
        a, b = old["files"].get(rel), new["files"].get(rel)
        if a != b:
            out.append(f"{rel}: {'missing' if b is None else 'new' if a is None else 'differs'}")
    if old["phase1_curve"] != new["phase1_curve"]:
        out.append("phase-1 loss curve differs")
    if old["phase1_weights_sha256"] != new["phase1_weights_sha256"]:
        out.append("phase-1 weights differ")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", type=Path, help="write the hashes here")
    g.add_argument("--check", type=Path, help="compare with hashes recorded here")
    p.add_argument("--steps", type=int, default=40, help="phase-1 steps (default 40)")
    p.add_argument("--work", type=Path, help="keep the run here (default: a temp dir)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        got = collect(args.work or Path(tmp), args.steps)
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"golden_outputs: {len(got['files'])} files + {args.steps} steps -> {args.record}")
        return 0
    want = json.loads(args.check.read_text())
    diff = differences(want, got)
    for line in diff:
        print("DIFFERS " + line)
    print(
        f"golden_outputs: {len(want['files'])} files, {args.steps} steps: "
        + ("identical" if not diff else f"{len(diff)} differences")
    )
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
