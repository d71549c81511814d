"""Fine-tune a pretrained BERT for sentence or sentence-pair classification, and compare it with
the same architecture from random weights under a protocol that cannot flatter either.

  bertprep finetune --model RUN/export --task sst2 --glue-dir glue_data/SST-2 --output OUT
  bertprep finetune --model RUN/export --task mrpc --glue-dir glue_data/MRPC --output OUT \\
      --compare-random --lr 1e-4,3e-4,1e-3 --seeds 3
  bertprep finetune --model RUN/export --train train.tsv --eval dev.tsv --output OUT
  bertprep finetune --model RUN/export --task squad --train dev-v1.1.json --output OUT
  bertprep finetune --model RUN/export --task snli --train snli_1.0_dev.jsonl.gz --output OUT \\
      --compare-frozen --lr 1e-4,1e-3 --seeds 3

Input: our training checkpoint (.pt, tokenizer from --vocab-dir) or an exported/transformers
directory. Data: a GLUE task directory as distributed (--task sst2|cola|mrpc, --glue-dir with
train.tsv and dev.tsv), SNLI JSONL as distributed (--task snli, --train/--eval, .jsonl or
.jsonl.gz), or TSV/CSV/JSONL files with a text column, an optional second text column (sentence
pairs) and a label column; without --eval, --eval-fraction of --train is held out as the
reported set. --task squad: SQuAD v1.1 JSON files (--train, --eval), span extraction
(start/end head, windows of --max-seq-length 384 tokens every --doc-stride 128, EM and F1 by the
official script's rules); its splits take whole articles.

Protocol: --select-fraction of the training rows is held out as a selection set (which rows
depends on --split-seed only). Every run (arm x LR x seed) trains on the rest and is evaluated
after each epoch on the selection set and on dev. The epoch of each run and the LR of each arm
are chosen on the selection set; dev is reported at those choices, never chosen on. Seeds are
paired: at one seed every arm gets the same head init, batch order and dropout masks. Arms:
pretrained (default), random (--random-init), both (--compare-random); --compare-frozen adds the
pretrained encoder frozen (arm frozen: only the pooler and classifier train).

Defaults follow the BERT paper (Devlin et al. 2019, appendix A.3) for batch (32), epochs (3),
warmup (10% linear, then linear decay), weight decay (0.01, none on biases and LayerNorm) and
max length (128); its LR grid {5e-5, 3e-5, 2e-5} is for BERT-base; small models need larger LRs.

Writes OUTPUT/results.json and OUTPUT/summary.md; a single run (one arm, LR and seed) also
writes OUTPUT/best/ (transformers BertForSequenceClassification directory of the chosen epoch),
metrics.jsonl and summary.json. See docs/finetuning.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ground.errors import UserError
from pretrain import compare, glue, squad_task
from pretrain.finetune_metrics import METRICS
from pretrain.finetune_runs import Hyper

SQUAD = "squad"  # --task squad: span extraction (pretrain.squad_task), not a GLUE task


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint .pt or exported model directory")
    p.add_argument("--vocab-dir", help="dir with tokenizer.json (required for a .pt checkpoint)")
    p.add_argument(
        "--task",
        help=f"GLUE task: {', '.join(glue.TASKS)} (reader and metric), or {SQUAD} "
        "(SQuAD v1.1 JSON in --train/--eval)",
    )
    p.add_argument("--glue-dir", help="the task's GLUE directory (train.tsv and dev.tsv)")
    p.add_argument("--train", help="training data: .tsv, .csv or .jsonl (squad: .json)")
    p.add_argument("--eval", help="reported data (default: hold out --eval-fraction of --train)")
    p.add_argument(
        "--eval-fraction",
        type=float,
        default=0.2,
        help="share of --train held out as the reported set when --eval is absent",
    )
    p.add_argument(
        "--select-fraction",
        type=float,
        default=0.1,
        help="share of the training rows held out for choosing epoch and LR",
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the held-out splits (independent of the run seeds)",
    )
    p.add_argument("--text-column", default="sentence", help="column/field with the text")
    p.add_argument("--text-pair-column", help="second text column for sentence-pair tasks")
    p.add_argument("--label-column", default="label", help="column/field with the label")
    p.add_argument(
        "--metric",
        choices=(*METRICS, *squad_task.METRICS[1:]),
        help="selection metric (default: the task's; accuracy for custom files; squad: f1 "
        "or exact_match)",
    )
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--lr", default="2e-5", help="peak LR, or a comma-separated grid: 1e-4,3e-4")
    p.add_argument("--batch-size", type=int, default=32, help="paper: 16 or 32")
    p.add_argument("--epochs", type=int, default=3, help="paper: 2, 3 or 4")
    p.add_argument("--warmup", type=float, default=0.1, help="warmup fraction of all steps")
    p.add_argument(
        "--weight-decay",
        type=float,
        default=0.01,
        help="AdamW weight decay (not on bias/LayerNorm)",
    )
    p.add_argument(
        "--max-seq-length",
        type=int,
        help="tokens per example after truncation (default 128; squad: per window, 384)",
    )
    p.add_argument(
        "--doc-stride", type=int, default=128, help="squad: tokens between window starts"
    )
    p.add_argument("--max-query-length", type=int, default=64, help="squad: question tokens kept")
    p.add_argument("--n-best", type=int, default=20, help="squad: start/end candidates per window")
    p.add_argument(
        "--max-answer-length", type=int, default=30, help="squad: longest answer, in tokens"
    )
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, help="one run seed (default 0)")
    seeds.add_argument("--seeds", type=int, help="N seeds: 0 .. N-1")
    seeds.add_argument("--seed-list", help="comma-separated run seeds, e.g. 0,1,7")
    arms = p.add_mutually_exclusive_group()
    arms.add_argument(
        "--compare-random",
        action="store_true",
        help="run both arms: pretrained and random init (same architecture)",
    )
    arms.add_argument(
        "--random-init",
        action="store_true",
        help="only the baseline: same architecture, random weights",
    )
    p.add_argument(
        "--freeze-encoder",
        action="store_true",
        help="every arm trains only the head (pooler + classifier)",
    )
    p.add_argument(
        "--compare-frozen",
        action="store_true",
        help="add the arm 'frozen' (pretrained encoder frozen, pooler + classifier train) beside "
        "'pretrained' (all trains); with --compare-random, three arms",
    )
    p.add_argument(
        "--no-group-by-length",
        dest="group_by_length",
        action="store_false",
        help="plain shuffled batches (default: batches of similar lengths)",
    )
    p.add_argument(
        "--save-best",
        action="store_true",
        help="grids: save each arm's chosen models in OUTPUT/best/",
    )
    p.add_argument(
        "--reuse-random",
        metavar="RESULTS_JSON",
        help="take the random-init runs from an earlier results.json made with the same rows, "
        "architecture, hyperparameters and device (checked by its random_key) instead of "
        "training them again: comparing several pretrained models costs one random arm",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def _device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; refuses unknown or unavailable devices."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r}: not a torch device (cpu, cuda, cuda:1 ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device


def _numbers(text: str, flag: str, kind):
    """Comma-separated ``kind`` values, distinct, in the given order."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected comma-separated numbers") from None
    if not values or len(set(values)) != len(values):
        raise UserError(f"{flag} {text!r}: expected distinct comma-separated numbers")
    return tuple(values)


def _seeds(args) -> tuple[int, ...]:
    if args.seeds is not None:
        if args.seeds < 1:
            raise UserError("--seeds must be >= 1")
        seeds = tuple(range(args.seeds))
    elif args.seed_list is not None:
        seeds = _numbers(args.seed_list, "--seed-list", int)
    else:
        seeds = (0 if args.seed is None else args.seed,)
    if min(seeds) < 0:
        raise UserError("seeds must be >= 0")
    return seeds


def _source(args) -> compare.Source | squad_task.SquadSource:
    """Where the data comes from: ``--task`` + ``--glue-dir``, or ``--train`` [+ ``--eval``]."""
    if args.task and args.task.lower() == SQUAD:
        if args.glue_dir or not args.train:
            raise UserError("--task squad reads SQuAD JSON: pass --train FILE (and --eval FILE)")
        for name in ("doc_stride", "max_query_length", "n_best", "max_answer_length"):
            if getattr(args, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be > 0")
        return squad_task.SquadSource(
            Path(args.train),
            Path(args.eval) if args.eval else None,
            args.doc_stride,
            args.max_query_length,
            args.n_best,
            args.max_answer_length,
        )
    task = glue.get_task(args.task) if args.task else None
    if args.glue_dir:
        if args.train or args.eval:
            raise UserError("--glue-dir reads DIR/train.tsv and DIR/dev.tsv: drop --train/--eval")
        if task is None:  # the directory names the task, as GLUE distributes it (SST-2, ...)
            name = Path(args.glue_dir).resolve().name
            if name.lower().replace("-", "") not in glue.TASKS:
                raise UserError(
                    f"--glue-dir {args.glue_dir}: pass --task ({', '.join(glue.TASKS)})"
                )
            task = glue.get_task(name)
        if not task.glue_dir:
            raise UserError(
                f"--task {task.name} reads its own files, not a GLUE directory: pass --train "
                "(and --eval; without it --eval-fraction of --train is held out)"
            )
        train, dev = glue.task_files(args.glue_dir)
        return compare.Source(train, dev, task)
    if not args.train:
        raise UserError("no data: pass --task with --glue-dir, or --train (and --eval)")
    return compare.Source(
        Path(args.train),
        Path(args.eval) if args.eval else None,
        task,
        args.text_column,
        args.text_pair_column,
        args.label_column,
    )


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Check the options, then run the protocol (:func:`pretrain.compare.run_plan`); 0."""
    squad = bool(args.task) and args.task.lower() == SQUAD
    if args.max_seq_length is None:
        args.max_seq_length = 384 if squad else 128
    for name in ("batch_size", "epochs", "max_seq_length"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be > 0")
    if not 0.0 <= args.warmup < 1.0:
        raise UserError(f"--warmup must be a fraction in [0, 1), got {args.warmup}")
    lrs = _numbers(args.lr, "--lr", float)
    if min(lrs) <= 0:
        raise UserError("--lr must be > 0")
    if args.split_seed < 0:
        raise UserError("--split-seed must be >= 0")
    if args.reuse_random and (args.save_best or not args.compare_random):
        raise UserError("--reuse-random goes with --compare-random and without --save-best")
    source = _source(args)
    if squad:
        metric = args.metric or "f1"
    else:
        if args.metric == "exact_match":
            raise UserError("--metric exact_match is for --task squad")
        metric = args.metric or (source.task.metric if source.task else "accuracy")
    if args.compare_frozen and (args.random_init or args.freeze_encoder):
        flag = "--random-init" if args.random_init else "--freeze-encoder"
        raise UserError(f"--compare-frozen runs a frozen and a trainable arm: drop {flag}")
    arms = (
        ("pretrained", "random")
        if args.compare_random
        else (("random",) if args.random_init else ("pretrained",))
    )
    if args.compare_frozen:  # pretrained, frozen[, random]
        arms = (arms[0], "frozen", *arms[1:])
    if args.threads:
        torch.set_num_threads(args.threads)
    hyper = Hyper(
        args.epochs,
        args.batch_size,
        args.warmup,
        args.weight_decay,
        args.freeze_encoder,
        args.group_by_length,
    )
    plan = compare.Plan(
        model=args.model,
        vocab_dir=args.vocab_dir,
        source=source,
        output=Path(args.output),
        arms=arms,
        lrs=lrs,
        seeds=_seeds(args),
        metric=metric,
        hyper=hyper,
        max_seq_length=args.max_seq_length,
        select_fraction=args.select_fraction,
        eval_fraction=args.eval_fraction,
        split_seed=args.split_seed,
        device=_device(args.device),
        save_best=args.save_best,
        reuse_random=Path(args.reuse_random) if args.reuse_random else None,
    )
    compare.run_plan(plan)
    return 0
