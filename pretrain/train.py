"""Pretrain BERT (MLM + NSP) on shards: LAMB, AMP, accumulation, two phases, exact resume, DDP.

Single process:   bertprep train --data RUN/seq128 --model base --output RUN/train
Several GPUs:     torchrun --nproc_per_node 8 -m pretrain.train --data RUN/seq128 ...
Phase 2:          bertprep train --phase 2 --data RUN/seq512 --init-from CKPT --output RUN/p2
Resume:           the same command plus --resume (continues the phase of the latest checkpoint)

--recipe picks NVIDIA's published values (phase 1: global batch 65536, LR 6e-3, warmup 0.2843,
7038 steps; phase 2: 32768, 4e-3, 0.128, 1563 steps), a one-GPU scaling of them, or a CPU demo;
any flag given explicitly overrides the recipe. Shards are read from a local directory: copy
them from object storage first (gsutil -m cp -r gs://B/RUN/seq128 .).

Outputs in --output: metrics.jsonl (one row per step: loss, MLM/NSP loss and accuracy, LR,
grad norm, loss scale, sequences/s, tokens/s), checkpoints/ckpt-STEP.pt (weights_only-loadable),
config.json; TensorBoard events when tensorboard is installed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from ground.errors import UserError, describe_os_error
from pretrain import dist
from pretrain.recipes import RECIPES
from pretrain.train_config import TrainConfig
from pretrain.trainer import Run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="shard directory (local), e.g. RUN/seq128")
    p.add_argument("--output", required=True, help="run output directory (checkpoints, metrics)")
    p.add_argument(
        "--model",
        help="preset: tiny, mini, small, base, large (default: the "
        "architecture of --init-from / --resume checkpoint, else base)",
    )
    p.add_argument("--config", help="model config JSON (ours or a transformers config.json)")
    p.add_argument("--phase", type=int, choices=(1, 2), default=1, help="1 (seq 128) or 2 (512)")
    p.add_argument(
        "--init-from",
        help="checkpoint to start from: weights + LAMB moments; step, "
        "schedule and data order restart (phase 1 -> phase 2)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CKPT",
        help="continue from the latest checkpoint in --output/checkpoints, or from CKPT (e.g. "
        "the newest good one, when the latest fails its checksum)",
    )
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="gpu1",
        help="batch/LR/warmup/steps defaults (default gpu1)",
    )
    p.add_argument("--global-batch", type=int, help="sequences per optimizer step (all ranks)")
    p.add_argument(
        "--micro-batch",
        type=int,
        help="sequences per forward pass per rank (default: no accumulation)",
    )
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--warmup", type=float, help="warmup as a fraction of --total-steps")
    p.add_argument("--total-steps", type=int, help="schedule length in optimizer steps")
    p.add_argument(
        "--max-steps",
        type=int,
        help="stop after this step (the schedule still assumes --total-steps)",
    )
    p.add_argument("--time-budget", type=float, help="stop and checkpoint after this many seconds")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--keep-last", type=int, default=3, help="checkpoints kept (default 3)")
    p.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="evaluate the validation shards every N steps (0 = only at the end)",
    )
    p.add_argument(
        "--precision", choices=("fp32", "bf16", "fp16"), help="default: bf16 on GPU, fp32 on CPU"
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument(
        "--optimizer",
        choices=("lamb", "lamb-compiled", "apex", "adamw"),
        help="lamb: foreach multi-tensor ops (default of every recipe but cpu); lamb-compiled: "
        "the same update fused by torch.compile; apex: apex FusedLAMB when importable, else "
        "lamb; adamw: AdamW (betas 0.9/0.98, eps 1e-6, wd 0.01, clip 1.0; the cpu recipe's)",
    )
    p.add_argument(
        "--bin-size",
        type=int,
        help="length bins for batching (default 64 in phase 2, off in phase 1)",
    )
    p.add_argument(
        "--dropout",
        type=float,
        help="dropout while pretraining (default: the recipe's, else the model's); the saved "
        "model config keeps the architecture's, which fine-tuning uses",
    )
    p.add_argument(
        "--mask-prob",
        type=float,
        help="share of tokens masked on the fly in unmasked shards (default 0.15; masked "
        "shards keep their stored masks)",
    )
    p.add_argument("--seed", type=int, default=42, help="initialisation and data order seed")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device")
    p.add_argument("--threads", type=int, help="CPU threads per process (torch.set_num_threads)")
    p.add_argument(
        "--log-samples",
        action="store_true",
        help="write the sample ids of every step to samples-rank{R}.jsonl (debugging)",
    )


def resolve(args: argparse.Namespace, world_size: int) -> TrainConfig:
    """The run's :class:`TrainConfig`: flags over the recipe's defaults, validated."""

    r = RECIPES[args.recipe][args.phase]
    global_batch = args.global_batch or r.global_batch
    total_steps = args.total_steps or r.total_steps
    dropout = args.dropout if args.dropout is not None else r.dropout
    mask_prob = args.mask_prob if args.mask_prob is not None else r.mask_prob
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise UserError(f"--dropout must be in [0, 1), got {dropout}")
    if not 0.0 < mask_prob < 1.0:
        raise UserError(f"--mask-prob must be in (0, 1), got {mask_prob}")
    micro_batch = args.micro_batch or global_batch // world_size
    step = micro_batch * world_size
    if micro_batch < 1 or global_batch % step:
        raise UserError(
            f"--global-batch {global_batch} must be a multiple of "
            f"--micro-batch {micro_batch} x world size {world_size}"
        )
    return TrainConfig(
        data=args.data,
        output=args.output,
        phase=args.phase,
        recipe=args.recipe,
        global_batch=global_batch,
        micro_batch=micro_batch,
        accumulation=global_batch // step,
        lr=args.lr if args.lr is not None else r.lr,
        warmup=args.warmup if args.warmup is not None else r.warmup,
        total_steps=total_steps,
        max_steps=min(args.max_steps or total_steps, total_steps),
        seed=args.seed,
        bin_size=args.bin_size if args.bin_size is not None else (64 if args.phase == 2 else 0),
        mask_prob=mask_prob,
        optimizer=getattr(args, "optimizer", None) or r.optimizer,
        dropout=dropout,
        model=args.model,
        config=args.config,
        init_from=args.init_from,
        resume=args.resume,
        time_budget=args.time_budget,
        checkpoint_every=args.checkpoint_every,
        keep_last=args.keep_last,
        eval_every=args.eval_every,
        precision=args.precision,
        compile=args.compile,
        log_samples=args.log_samples,
    )


def run(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    import torch  # torch (~2 s): after flags parse, so --help and flag errors are instant

    if args.threads:
        torch.set_num_threads(args.threads)
    info = dist.init(args.device)
    stop = {"signal": None}

    def on_term(signum, frame):
        stop["signal"] = signum

    # Installed for this run only: a caller that trains in-process (the demo, a notebook) gets
    # its own handler back, so its later child processes still die on SIGTERM.
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        job = Run(resolve(args, info.world_size), info)
        return job.train(stop, time.monotonic())
    finally:
        signal.signal(signal.SIGTERM, previous)
        dist.shutdown()


def main(argv: list[str] | None = None) -> int:
    """``python -m pretrain.train`` (what torchrun launches)."""

    parser = argparse.ArgumentParser(
        prog="pretrain.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only or misplaced output: one line, exit 2
        print(f"train: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
