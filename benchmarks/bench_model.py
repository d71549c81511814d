"""Training-step throughput of our BertForPreTraining vs transformers' on CPU (fp32).

One step = forward + backward + LAMB step (our ``Lamb`` for both models, so the difference is
the model). Runs are interleaved (ours, theirs, theirs, ours, ...) and the median over repeats
is reported, because the CPU is shared. MFU is for information: the same model FLOPs for both
(full encoder, MLM head on the masked positions only) per second over a measured fp32 GEMM peak
with the same thread count. One thread gives the steadiest figures on a shared machine: with
two, every parallel op can wait milliseconds for a descheduled OpenMP thread.

    .venv/bin/python benchmarks/bench_model.py --threads 1 --presets tiny,mini,small,base
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pretrain.config import BertConfig, preset
from pretrain.lamb import Lamb, lamb_param_groups
from pretrain.model import BertForPreTraining


def model_flops_per_step(cfg: BertConfig, batch: int, seq: int, predictions: int) -> float:
    """Analytic FLOPs of one training step (forward + backward = 3x forward GEMM FLOPs).

    Per token and layer 12 H^2 MACs (QKV, output, 2 FFN GEMMs) + 2 T H (scores, context);
    pooler + NSP per sequence; MLM transform + decoder (H * V_pad) per predicted position.
    """
    h, layers = cfg.hidden_size, cfg.num_hidden_layers
    encoder = batch * seq * layers * (12 * h * h + 2 * seq * h)
    heads = batch * (h * h + 2 * h) + batch * predictions * (h * h + h * cfg.padded_vocab_size)
    return 3 * 2 * (encoder + heads)


def reference_flops_per_step(cfg: BertConfig, batch: int, seq: int) -> float:
    """FLOPs of the same step done the reference way: MLM head on all T positions, and the
    last encoder layer on every query row (transformers' BertForPreTraining)."""
    h, layers, v = cfg.hidden_size, cfg.num_hidden_layers, cfg.padded_vocab_size
    encoder = batch * seq * layers * (12 * h * h + 2 * seq * h)
    heads = batch * (h * h + 2 * h) + batch * seq * (h * h + h * v)
    return 3 * 2 * (encoder + heads)


def ours_flops_per_step(cfg: BertConfig, batch: int, seq: int, predictions: int) -> float:
    """FLOPs of our step: heads on the P gathered rows, and in the last layer only the K/V
    projections (4 H^2 of 24 H^2 per token, fwd) run on all T rows; the rest on P + 1 rows."""
    h = cfg.hidden_size
    full = model_flops_per_step(cfg, batch, seq, predictions)
    q = predictions + 1  # the masked positions and [CLS] for the pooler
    last_layer = batch * (seq - q) * (12 * h * h - 2 * h * h + 2 * seq * h)
    return full - 3 * 2 * last_layer


def gemm_peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 n^3 matmul FLOP/s with the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def make_batch(batch: int, seq: int, predictions: int, vocab: int, seed: int = 0) -> dict:
    """Phase-1-like batch: 90% full-length sequences, 10% shorter (short_seq_prob 0.1)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.full((batch,), seq)
    short = torch.rand(batch, generator=g) < 0.1
    lengths[short] = torch.randint(predictions + 2, seq, (int(short.sum()),), generator=g)
    ar = torch.arange(seq)
    attention_mask = (ar[None, :] < lengths[:, None]).long()
    input_ids = torch.randint(1000, vocab, (batch, seq), generator=g) * attention_mask
    token_type_ids = ((ar[None, :] >= lengths[:, None] // 2) & attention_mask.bool()).long()
    positions = torch.stack(
        [torch.randperm(int(n) - 1, generator=g)[:predictions].sort().values + 1 for n in lengths]
    )
    labels = torch.randint(1000, vocab, (batch, predictions), generator=g)
    full_labels = torch.full((batch, seq), -100).scatter(1, positions, labels)
    nsp = torch.randint(0, 2, (batch,), generator=g)
    return dict(
        input_ids=input_ids,
        token_type_ids=token_type_ids,
        attention_mask=attention_mask,
        positions=positions,
        labels=labels,
        full_labels=full_labels,
        nsp=nsp,
    )


def ours_step(model, opt, b, accum: int = 1):
    """``accum`` forward + backward passes over the micro-batch, then one LAMB step."""
    for _ in range(accum):
        out = model(
            b["input_ids"], b["token_type_ids"], b["attention_mask"], b["positions"],
            b["labels"], b["nsp"],
        )  # fmt: skip
        loss = out["mlm_loss_sum"] / out["mlm_count"] + out["nsp_loss_sum"] / b["nsp"].shape[0]
        loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def hf_step(model, opt, b, accum: int = 1):
    for _ in range(accum):
        out = model(
            input_ids=b["input_ids"],
            token_type_ids=b["token_type_ids"],
            attention_mask=b["attention_mask"],
            labels=b["full_labels"],
            next_sentence_label=b["nsp"],
        )
        out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def build(name: str, cfg: BertConfig):
    torch.manual_seed(0)
    if name == "ours":
        model = BertForPreTraining(cfg)
        step = ours_step
    else:
        import transformers

        hf_cfg = transformers.BertConfig(**{k: v for k, v in cfg.to_dict().items()
                                            if k != "vocab_pad_multiple"})  # fmt: skip
        model = transformers.BertForPreTraining(hf_cfg)
        step = hf_step
    model.train()
    return model, Lamb(lamb_param_groups(model), lr=1e-3), step


def bench_preset(name: str, args, peak: float) -> None:
    cfg = preset(name)
    batch = args.batch or {"tiny": 32, "mini": 32, "small": 16, "base": 8, "large": 4}[name]
    b = make_batch(batch, args.seq, args.predictions, cfg.vocab_size)
    runs = {k: build(k, cfg) for k in ("ours", "transformers")}
    times = {k: [] for k in runs}
    for model, opt, step in runs.values():
        for _ in range(args.warmup):
            step(model, opt, b, args.accum)
    for r in range(args.repeats):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for k in order:
            model, opt, step = runs[k]
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(model, opt, b, args.accum)
            times[k].append((time.perf_counter() - t0) / args.steps / args.accum)
    flops = model_flops_per_step(cfg, batch, args.seq, args.predictions)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in runs:
        print(
            f"{name:6s} {k:12s} batch {batch:3d}  {med[k] * 1e3:9.1f} ms/step  "
            f"{batch / med[k]:8.2f} seq/s  MFU {flops / med[k] / peak:6.1%}  "
            f"(runs: {', '.join(f'{t * 1e3:.0f}' for t in times[k])} ms)"
        )
    ceiling = reference_flops_per_step(cfg, batch, args.seq) / ours_flops_per_step(
        cfg, batch, args.seq, args.predictions
    )
    print(
        f"{name:6s} speedup ours / transformers: {med['transformers'] / med['ours']:.2f}x "
        f"(FLOP-count ratio, the ceiling of what skipping work can give: {ceiling:.2f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tiny,mini,small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=0, help="0: a per-preset default")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--predictions", type=int, default=20, help="masked positions/sequence")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--accum",
        type=int,
        default=1,
        help="micro-batches per LAMB step (gradient accumulation); times are per micro-batch",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    peak = gemm_peak_flops()
    print(
        f"torch {torch.__version__}, {args.threads} threads, fp32, seq {args.seq}, "
        f"{args.predictions} predictions/seq, {args.accum} micro-batch(es) per LAMB step; "
        f"fp32 GEMM peak {peak / 1e9:.1f} GFLOP/s"
    )
    for name in args.presets.split(","):
        bench_preset(name, args, peak)


if __name__ == "__main__":
    main()
