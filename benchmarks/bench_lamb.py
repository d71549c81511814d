"""LAMB step time: our ``torch._foreach_*`` Lamb vs the per-parameter reference loop.

Parameters and gradients of a BERT preset (default base: 110M parameters, 2 groups as in
training); runs interleaved, median reported. On CPU the foreach ops are loops in C++, so the
gain is Python/dispatch overhead; the >= 3x target is for a GPU (``--device cuda``).

    .venv/bin/python benchmarks/bench_lamb.py --threads 1 --preset base
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pretrain.config import preset
from pretrain.lamb import Lamb, LambReference, lamb_param_groups
from pretrain.model import BertForPreTraining


def build(cls, name: str, device: str):
    torch.manual_seed(0)
    model = BertForPreTraining(preset(name)).to(device)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    return cls(lamb_param_groups(model), lr=1e-3)


def time_steps(opt, steps: int, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="base")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    opts = {"foreach": build(Lamb, args.preset, args.device)}
    opts["per-parameter"] = build(LambReference, args.preset, args.device)
    n_params = sum(p.numel() for g in opts["foreach"].param_groups for p in g["params"])
    n_tensors = sum(len(g["params"]) for g in opts["foreach"].param_groups)
    times = {k: [] for k in opts}
    for opt in opts.values():
        time_steps(opt, 1, args.device)  # allocate state
    for r in range(args.repeats):
        for k in list(opts) if r % 2 == 0 else list(reversed(opts)):
            times[k].append(time_steps(opts[k], args.steps, args.device))
    print(
        f"torch {torch.__version__}, {args.device}, {args.threads} threads, preset {args.preset}: "
        f"{n_params / 1e6:.1f}M parameters in {n_tensors} tensors"
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(
            f"{k:14s} {med[k] * 1e3:8.1f} ms/step  (runs: {', '.join(f'{t * 1e3:.0f}' for t in v)})"
        )
    print(f"speedup foreach / per-parameter: {med['per-parameter'] / med['foreach']:.2f}x")


if __name__ == "__main__":
    main()
