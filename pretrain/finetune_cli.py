"""Fine-tune a pretrained BERT for sentence or sentence-pair classification.

Input: our training checkpoint (.pt, tokenizer from --vocab-dir) or an exported/transformers
directory (config.json, model.safetensors, tokenizer.json). Data: TSV, CSV or JSONL with a text
column, an optional second text column (sentence pairs) and a label column; without --eval a
deterministic --eval-fraction of --train is held out.

Defaults follow the BERT paper (Devlin et al. 2019, appendix A.3): batch 32, 3 epochs, Adam with
lr 2e-5 (the paper searches {5e-5, 3e-5, 2e-5}; batch {16, 32}; epochs {2, 3, 4}), 10% linear
warmup then linear decay, weight decay 0.01 (none on biases and LayerNorm), max length 128.

Writes OUTPUT/best/ (the best epoch by eval accuracy, a transformers
BertForSequenceClassification directory), OUTPUT/metrics.jsonl (one line per epoch) and
OUTPUT/summary.json (eval accuracy and macro F1 beside the majority-class baseline).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bertprep.errors import UserError
from pretrain import finetune as ft
from pretrain import finetune_data as fd
from pretrain.atomic import write_text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint .pt or exported model directory")
    p.add_argument("--vocab-dir", help="dir with tokenizer.json (required for a .pt checkpoint)")
    p.add_argument("--train", required=True, help="training data: .tsv, .csv or .jsonl")
    p.add_argument("--eval", help="eval data (default: hold out --eval-fraction of --train)")
    p.add_argument(
        "--eval-fraction",
        type=float,
        default=0.2,
        help="share of --train held out for evaluation when --eval is absent",
    )
    p.add_argument("--text-column", default="sentence", help="column/field with the text")
    p.add_argument("--text-pair-column", help="second text column for sentence-pair tasks")
    p.add_argument("--label-column", default="label", help="column/field with the label")
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--lr", type=float, default=2e-5, help="peak LR (paper: 2e-5, 3e-5, 5e-5)")
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
        "--max-seq-length", type=int, default=128, help="tokens per example after truncation"
    )
    p.add_argument("--seed", type=int, default=42, help="initialisation, split and order")
    p.add_argument("--freeze-encoder", action="store_true", help="train only the head")
    p.add_argument(
        "--random-init", action="store_true", help="baseline: same architecture, random weights"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def _write_atomic(path: Path, text: str) -> None:
    write_text(path, text)


def load_tokenizer(vocab_dir: Path | None, pretrained: ft.Pretrained):
    """``(tokenizer, files to copy into the saved model)`` from ``--vocab-dir`` or the model dir.

    Raises:
        UserError: no tokenizer.json to be found, or an unreadable one.
    """
    from tokenizers import Tokenizer

    src = vocab_dir or pretrained.tokenizer_dir
    if src is None:
        raise UserError("a checkpoint carries no tokenizer: pass --vocab-dir (e.g. RUN/seq128)")
    src = Path(src)
    path = src if src.suffix == ".json" else src / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"{path}: no such file (need the tokenizer.json of the pretraining run)")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on a malformed file
        raise UserError(f"{path}: not a tokenizers tokenizer.json ({e})") from None
    tok.no_truncation()  # a tokenizer.json may carry settings; we truncate pairs ourselves
    tok.no_padding()
    files: dict = {"tokenizer.json": path}
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (path.parent / name).is_file():
            files[name] = path.parent / name
    if "vocab.txt" not in files:
        vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
        files["vocab.txt"] = "".join(f"{t}\n" for t, _ in vocab)
    if "tokenizer_config.json" not in files:
        norm = json.loads(tok.to_str()).get("normalizer") or {}
        files["tokenizer_config.json"] = json.dumps(
            {"tokenizer_class": "BertTokenizer", "do_lower_case": bool(norm.get("lowercase")),
             "model_max_length": pretrained.config.max_position_embeddings},
            indent=2, sort_keys=True,
        ) + "\n"  # fmt: skip
    if tok.get_vocab_size() > pretrained.config.vocab_size:
        raise UserError(
            f"{path}: {tok.get_vocab_size()} tokens but the model has "
            f"{pretrained.config.vocab_size}; wrong --vocab-dir?"
        )
    return tok, files


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


def _read(args, path: str) -> fd.ReadResult:
    return fd.read_examples(path, args.text_column, args.label_column, args.text_pair_column)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Fine-tune, evaluate each epoch, save the best model; returns 0."""
    for name in ("lr", "batch_size", "epochs", "max_seq_length"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be > 0")
    if not 0.0 <= args.warmup < 1.0:
        raise UserError(f"--warmup must be a fraction in [0, 1), got {args.warmup}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    t0 = time.time()
    pretrained = ft.load_pretrained(args.model)
    cfg = pretrained.config
    if args.max_seq_length > cfg.max_position_embeddings:
        raise UserError(f"--max-seq-length exceeds the model's {cfg.max_position_embeddings}")
    tok, tok_files = load_tokenizer(Path(args.vocab_dir) if args.vocab_dir else None, pretrained)

    train_read = _read(args, args.train)
    skipped = {"train": train_read.skipped}
    if args.eval:
        eval_read = _read(args, args.eval)
        skipped["eval"] = eval_read.skipped
        train_ex, eval_ex = train_read.examples, eval_read.examples
    else:
        tr, ev = fd.split_train_eval(len(train_read.examples), args.eval_fraction, args.seed)
        train_ex = [train_read.examples[i] for i in tr]
        eval_ex = [train_read.examples[i] for i in ev]
    fd.build_label_map([e.label for e in train_ex])  # the train split alone needs two classes
    id2label = fd.build_label_map([e.label for e in train_ex + eval_ex])
    label2id = {lab: i for i, lab in enumerate(id2label)}
    train = fd.encode_examples(tok, train_ex, label2id, args.max_seq_length)
    evald = fd.encode_examples(tok, eval_ex, label2id, args.max_seq_length)

    state = None if args.random_init else pretrained.encoder_state
    model = ft.build_classifier(cfg, len(id2label), state, args.seed).to(device)
    if args.freeze_encoder:
        ft.freeze_encoder(model)
    steps_per_epoch = -(-len(train) // args.batch_size)
    total = steps_per_epoch * args.epochs
    optimizer = ft.make_optimizer(model, args.lr, args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, ft.LinearWarmup(total, round(args.warmup * total))
    )
    rng = np.random.default_rng(args.seed)
    majority_id, majority_acc = ft.majority_baseline(evald.labels)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"finetune: {len(train)} train / {len(evald)} eval examples, {len(id2label)} labels "
        f"{id2label}, {total} steps on {device}"
        + (" (random init)" if args.random_init else "")
        + (" (frozen encoder)" if args.freeze_encoder else "")
    )
    history, best, step = [], None, 0
    for epoch in range(1, args.epochs + 1):
        tr_metrics = ft.train_epoch(
            model, train, optimizer, scheduler, args.batch_size, rng, device
        )
        step += tr_metrics.pop("steps")
        ev = ft.evaluate(model, evald, device=device)
        row = {"epoch": epoch, "step": step, **tr_metrics,
               **{f"eval_{k}": v for k, v in ev.items()}}  # fmt: skip
        history.append(row)
        _write_atomic(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        print(
            f"epoch {epoch}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f} "
            f"| eval loss {ev['loss']:.4f} acc {ev['accuracy']:.4f} macro-F1 {ev['macro_f1']:.4f}"
        )
        if best is None or ev["accuracy"] > best["eval_accuracy"]:
            best = row
            ft.save_classifier(model, id2label, tok_files, out / "best")
    summary = {
        "eval_accuracy": best["eval_accuracy"],
        "eval_macro_f1": best["eval_macro_f1"],
        "best_epoch": best["epoch"],
        "majority_baseline_accuracy": majority_acc,
        "majority_label": id2label[majority_id],
        "labels": id2label,
        "num_train": len(train),
        "num_eval": len(evald),
        "skipped": skipped,
        "random_init": bool(args.random_init),
        "freeze_encoder": bool(args.freeze_encoder),
        "model": str(args.model),
        "hyperparameters": {k: getattr(args, k) for k in (
            "lr", "batch_size", "epochs", "warmup", "weight_decay", "max_seq_length", "seed")},
        "best_model_dir": "best",  # relative to --output: outputs do not depend on where they are
    }  # fmt: skip
    _write_atomic(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(
        f"eval accuracy {best['eval_accuracy']:.4f} (epoch {best['epoch']}), macro-F1 "
        f"{best['eval_macro_f1']:.4f}; majority-class baseline {majority_acc:.4f}; "
        f"best model in {out / 'best'}; {time.time() - t0:.1f} s"
    )
    return 0
