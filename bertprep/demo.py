"""``make demo``: the whole path on the corpus bundled in the repo (corpus/), with a summary.

build (extract -> segment -> vocab -> instances at 128 and 512) -> verify -> pretrain phase 1 ->
phase 2 -> export to a transformers directory -> fine-tune on GLUE SST-2 against a random-init
baseline (paired seeds, each arm at its own best LR, reported on dev) -> HTML report. A tiny
model and about five minutes of pretraining with the ``cpu`` recipe.
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
SST2_DEV = CORPUS / "finetune" / "glue-sst2-dev.tsv"
SST2_TRAIN = CORPUS / "finetune" / "glue-sst2-train-8k.tsv"  # 8,000 rows of GLUE's train


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
        # MLM only, masked afresh by the loader each epoch: the cpu recipe's data
        "--no-nsp",
        "--unmasked",
        "--dupe-factor",
        "1",
    ]
    train = ["train", "--model", "tiny", "--recipe", "cpu-demo" if fast else "cpu"]
    train += ["--threads", "2"]
    # ~0.32 s per phase-1 step on 2 cores: about 5 minutes of pretraining
    p1_steps, p2_steps = ("8", "2") if fast else ("900", "30")
    tune = ["finetune", "--train", str(SST2_TRAIN), "--eval", str(SST2_DEV)]
    tune += ["--epochs", "1" if fast else "2", "--max-seq-length", "32" if fast else "64"]
    tune += ["--threads", "2"]
    # The fair comparison: both arms at their own best LR (chosen on rows held out of train),
    # paired seeds, reported on SST-2 dev.
    grid = ["--lr", "1e-3", "--seeds", "1"] if fast else ["--lr", "3e-4,1e-3,3e-3", "--seeds", "3"]
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
        (
            "fine-tune, pretrained vs random init",
            [
                *tune,
                *grid,
                "--model",
                f"{run}/export",
                "--compare-random",
                "--output",
                f"{run}/compare",
            ],
        ),  # fmt: skip
        (
            "fine-tune (best model saved)",
            [*tune, "--lr", "1e-3", "--model", f"{run}/export", "--output", f"{run}/finetune"],
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
    lines += comparison_lines(run)
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


def comparison_lines(run: Path) -> list[str]:
    """The fair comparison's outcome, whatever it is (from RUN/compare/results.json)."""
    res = json.loads((run / "compare" / "results.json").read_text())
    c, pair = res["choice"], res["paired"]

    def arm(name: str) -> str:
        d = c[name]["dev"]
        spread = f" ± {d['std']:.3f}" if d["std"] is not None else ""
        return f"{name} {d['mean']:.3f}{spread} (lr {c[name]['lr']:g})"

    gap = pair["mean"]
    lines = [
        f"SST-2 dev accuracy over {pair['n']} paired seed(s), each arm at its own best LR: "
        f"{arm('pretrained')}, {arm('random')}; majority class "
        f"{res['majority']['dev']['accuracy']:.3f}",
        f"pretrained - random: {gap:+.3f} (positive on {pair['positive']} of {pair['n']} "
        f"seeds): pretraining {'helped' if gap > 0 else 'did not help'} here -> "
        f"{run}/compare/summary.md",
        "how many minutes of pretraining it takes to pay on GLUE: "
        "benchmarks/bench_value.py and docs/pretraining.md",
    ]
    return lines


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
