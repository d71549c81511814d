"""Which training settings buy the most steps per CPU-minute? ``bertprep train`` end to end.

Each configuration (model x precision x compile) trains ``--steps`` steps of the cpu recipe on
the same shards; the median seconds per step over steps 6.. is reported, with the training loss
at the last step (bf16 must not buy speed with a worse loss). Configurations run in turn, then
again in reverse order (``--repeats``), and the median over repeats is kept, because this
machine's speed drifts. Timing is wall time: run nothing else meanwhile.

    .venv/bin/python benchmarks/bench_train_cpu.py --data RUN/seq128 \
        --models tiny,mini --precisions fp32,bf16 --compile off,on
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run_one(data: str, model: str, precision: str, compiled: bool, args, out: Path) -> dict:
    """Train ``args.steps`` steps; returns median s/step (steps 6..) and the last loss."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "bertprep", "train", "--data", data, "--model", model,
           "--recipe", "cpu", "--total-steps", str(args.steps), "--threads", str(args.threads),
           "--precision", precision, "--output", str(out), "--checkpoint-every", "100000",
           "--eval-every", "100000"] + (["--compile"] if compiled else [])  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    per_step = statistics.median(args.batch / r["sequences_per_s"] for r in steps[5:])
    return {"s_per_step": per_step, "last_loss": steps[-1]["loss"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a seq-128 shard folder (RUN/seq128)")
    ap.add_argument("--models", default="tiny,mini")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--compile", default="off,on", help="off, on or both")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64, help="the cpu recipe's phase-1 batch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    configs = list(
        itertools.product(
            args.models.split(","),
            args.precisions.split(","),
            [c == "on" for c in args.compile.split(",")],
        )
    )
    results: dict[tuple, list[dict]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for cfg in configs if rep % 2 == 0 else configs[::-1]:
                r = run_one(args.data, *cfg, args, Path(tmp) / "run")
                print(f"  {cfg}: {r['s_per_step']:.3f} s/step, loss {r['last_loss']:.3f}")
                results[cfg].append(r)
    base = {m: statistics.median(x["s_per_step"] for x in results[(m, "fp32", False)])
            for m in args.models.split(",") if (m, "fp32", False) in results}  # fmt: skip
    print("\n| model | precision | compile | s/step (median) | vs fp32 eager | loss at last step |")
    print("|---|---|---|---|---|---|")
    for (model, precision, compiled), rs in results.items():
        s = statistics.median(r["s_per_step"] for r in rs)
        loss = statistics.median(r["last_loss"] for r in rs)
        ratio = f"{base[model] / s:.2f}x" if model in base else "-"
        print(f"| {model} | {precision} | {'on' if compiled else 'off'} | {s:.3f} | {ratio} "
              f"| {loss:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
