"""``make demo``: the whole path on the corpus bundled in the repo (corpus/), with a summary.

build (extract -> segment -> vocab -> instances at 128 and 512) -> verify -> pretrain phase 1 ->
phase 2 -> export to a transformers directory -> fine-tune on GLUE SST-2 (and a random-init
baseline) -> HTML report. A tiny model and few steps: the point is the path, not the scores.
Every stage runs through the same ``bertprep`` command a user types; each stage's wall time is
reported. Usage: ``python -m bertprep.demo [--output RUN] [--fast]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bertprep.cli import main as bertprep

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SST2 = CORPUS / "finetune" / "glue-sst2-dev.tsv"


def stages(run: str, fast: bool) -> list[tuple[str, list[str]]]:
    """The demo's commands, in order: (label, bertprep argv)."""
    wiki = str(CORPUS / "wikipedia" / "*")
    build = [
        "build",
        "--wikipedia",
        wiki,
        "--books",
        str(CORPUS / "books"),
        "--output",
        run,
        "--vocab-size",
        "8000" if fast else "16000",
        "--overwrite",
    ]
    train = ["train", "--model", "tiny", "--recipe", "cpu-demo", "--threads", "2"]
    p1_steps, p2_steps = ("8", "2") if fast else ("300", "30")
    tune = [
        "finetune",
        "--train",
        str(SST2),
        "--eval-fraction",
        "0.2",
        "--lr",
        "1e-3",
        "--epochs",
        "1" if fast else "3",
        "--max-seq-length",
        "32" if fast else "64",
        "--threads",
        "2",
    ]
    if fast:
        build += ["--dupe-factor", "1"]
    return [
        ("build", build),
        ("verify seq128", ["shards", "verify", f"{run}/seq128"]),
        ("verify seq512", ["shards", "verify", f"{run}/seq512"]),
        (
            "pretrain phase 1",
            [
                *train,
                "--data",
                f"{run}/seq128",
                "--output",
                f"{run}/phase1",
                "--max-steps",
                p1_steps,
                "--total-steps",
                p1_steps,
            ],
        ),
        (
            "pretrain phase 2",
            [
                *train,
                "--phase",
                "2",
                "--data",
                f"{run}/seq512",
                "--output",
                f"{run}/phase2",
                "--init-from",
                f"{run}/phase1/checkpoints/LATEST",
                "--max-steps",
                p2_steps,
                "--total-steps",
                p2_steps,
            ],
        ),
        ("export", ["export", f"{run}/phase2", f"{run}/export", "--overwrite"]),
        ("fine-tune", [*tune, "--model", f"{run}/export", "--output", f"{run}/finetune"]),
        (
            "fine-tune random-init baseline",
            [
                *tune,
                "--model",
                f"{run}/export",
                "--random-init",
                "--output",
                f"{run}/finetune-random",
            ],
        ),
        ("report", ["report", run]),
    ]


def _resolve(cmd: list[str]) -> list[str]:
    """Replace a ``.../checkpoints/LATEST`` argument by the newest checkpoint there."""
    out = []
    for arg in cmd:
        if arg.endswith("/checkpoints/LATEST"):
            ckpts = sorted(Path(arg).parent.glob("ckpt-*.pt"))
            arg = str(ckpts[-1]) if ckpts else arg
        out.append(arg)
    return out


def _metrics(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def summary(run: Path, timings: dict[str, float]) -> str:
    """What the demo made, where it is, and how long each stage took."""
    rep = json.loads((run / "report.json").read_text())
    seg, voc = rep.get("segment", {}), rep.get("vocab", {})
    lines = [
        f"documents: {rep['docs_in']} in, {rep['docs_out']} out -> {run}/docs "
        f"(skipped {rep['skipped']}, rejected {rep['rejected']})",
        f"sentences: {seg.get('sentences')} -> {run}/sentences",
        f"vocab: {voc.get('vocab_size')} entries, tokens/word {voc.get('tokens_per_word')} "
        f"-> {run}/vocab",
    ]
    for phase, info in sorted(rep.get("instances", {}).items()):
        lines.append(
            f"{phase}: {info['training']} training + {info['validation']} validation "
            f"instances, {info['stats']['tokens']} tokens, {info['shards']} shards "
            f"-> {run}/{phase}"
        )
    for phase in ("phase1", "phase2"):
        rows = [r for r in _metrics(run / phase / "metrics.jsonl") if "loss" in r]
        lines.append(
            f"{phase}: loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f} "
            f"(MLM {rows[-1]['mlm_loss']:.3f}) over {len(rows)} steps "
            f"-> {run}/{phase}/checkpoints"
        )
    lines.append(f"export: transformers directory -> {run}/export")
    tuned = json.loads((run / "finetune" / "summary.json").read_text())
    rand = json.loads((run / "finetune-random" / "summary.json").read_text())
    lines.append(
        f"SST-2 eval accuracy: fine-tuned {tuned['eval_accuracy']:.3f}, random-init "
        f"{rand['eval_accuracy']:.3f}, majority class "
        f"{tuned['majority_baseline_accuracy']:.3f} -> {run}/finetune/best"
    )
    lines.append(f"report: {run}/report/report.html")
    inner = rep.get("build", {}).get("seconds", {})
    order = ("extract", "segment", "vocab", "instances")  # build's order (report.json sorts keys)
    inner = {k: inner[k] for k in order if k in inner}
    for label, secs in timings.items():
        lines.append(f"time {label}: {secs:.1f} s")
        if label == "build":  # its stages, as build measured them
            lines += [f"  time {stage}: {s:.1f} s" for stage, s in inner.items()]
    lines.append(f"time total: {sum(timings.values()):.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="demo-run", help="run directory (default demo-run)")
    parser.add_argument("--fast", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)
    if not CORPUS.is_dir():
        print(f"demo: {CORPUS} not found; run it from a checkout of the repo", file=sys.stderr)
        return 2
    timings = {}
    for label, cmd in stages(args.output, args.fast):
        cmd = _resolve(cmd)
        print(f"\n=== {label}: bertprep {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        rc = bertprep(cmd)
        timings[label] = time.perf_counter() - t0
        if rc != 0:
            print(f"demo: stage {label} failed with exit code {rc}", file=sys.stderr)
            return rc
    print("\n=== summary\n" + summary(Path(args.output), timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
