"""The fine-tuning protocol: a grid of (arm, LR, seed) runs on fixed splits, every choice made
on rows held out of the training file, dev reported at those choices.

Splits depend on the split seed alone (never on a run seed), so every arm, LR and seed trains,
selects and reports on the same rows:

* without an eval file, ``eval_fraction`` of the training file is held out first as the
  reported ("dev") set;
* ``select_fraction`` of the remaining training rows is held out as the selection set.

Each file is tokenized once per command; splits are row subsets of the encoded arrays. What a
run does and how choices are made: :mod:`pretrain.finetune_runs`; tables:
:mod:`pretrain.compare_report`.

Writes ``OUTPUT/results.json`` (rewritten after every run, ``"complete": true`` at the end) and
``OUTPUT/summary.md``. A single run (one arm, LR and seed) also writes what ``bertprep finetune``
always wrote: ``best/`` (the epoch chosen on the selection set, a transformers
``BertForSequenceClassification`` directory), ``metrics.jsonl`` and ``summary.json``. A grid
saves models only with ``save_best``: ``best/<arm>-seed<S>/`` at each arm's chosen LR.

A task family plugs in through its source: ``source.prepare(plan, tok)`` returns a
:class:`Prepared` (the splits, how runs build/train/evaluate them, how a model is saved).
:class:`Source` is classification; SQuAD's is :class:`pretrain.squad_task.SquadSource`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ground.atomic import write_text
from ground.errors import UserError
from pretrain import compare_report as report
from pretrain import finetune as ft
from pretrain import finetune_data as fd
from pretrain.finetune_metrics import constant_metrics, majority_baseline
from pretrain.finetune_runs import (  # random_key, reusable_random_runs: re-exported
    Classification,
    Hyper,
    Kind,
    Splits,
    all_paired,
    choose,
    fingerprint,
    paired,
    random_key,
    reusable_random_runs,
    run_one,
)
from pretrain.glue import Task


@dataclass(frozen=True)
class Prepared:
    """A task's data ready for the grid: the splits and what :func:`run_plan` needs beside them.

    ``info`` is results.json's ``data``; ``labels`` the class labels (``None`` for spans);
    ``baseline`` results.json's ``majority`` (a constant predictor's dev metrics, or ``None``);
    ``reported`` the metrics in tables, the selection metric first; ``save(state, cfg,
    tokenizer_files, out_dir)`` writes a transformers directory of a run's best state.
    """

    task: str | None
    splits: Splits
    info: dict
    kind: Kind
    description: str
    labels: list[str] | None
    baseline: dict | None
    reported: tuple[str, ...]
    save: Callable[[dict, object, dict, Path], None]


@dataclass(frozen=True)
class Source:
    """Where examples come from: a GLUE ``task``'s reader, or columns of a TSV/CSV/JSONL file.
    ``eval`` is ``None`` when the reported set is held out of ``train``."""

    train: Path
    eval: Path | None = None
    task: Task | None = None
    text_column: str = "sentence"
    text_pair_column: str | None = None
    label_column: str = "label"

    def read(self, path: Path) -> fd.ReadResult:
        if self.task is not None:
            return self.task.reader(path)
        return fd.read_examples(path, self.text_column, self.label_column, self.text_pair_column)

    def prepare(self, plan: Plan, tok) -> Prepared:
        """:func:`prepare`, plus the majority-class baseline of the training rows.

        Raises:
            UserError: see :func:`prepare`; ``--metric f1`` with other than two labels.
        """
        splits, info, id2label = prepare(plan, tok)
        if plan.metric == "f1" and splits.num_labels != 2:
            raise UserError(f"--metric f1 (of label id 1) needs two labels, not {id2label}")
        majority_id, _ = majority_baseline(splits.train.labels)
        baseline = {
            "label": id2label[majority_id],
            "of": "training rows",
            "dev": constant_metrics(majority_id, splits.dev.labels, len(id2label)),
        }

        def save(state, cfg, tok_files, out_dir):
            _save(state, cfg, id2label, tok_files, out_dir)

        return Prepared(
            self.task.name if self.task else None, splits, info,
            Classification(splits.num_labels), _describe(plan, info, id2label), id2label,
            baseline, report.reported_metrics(plan), save,
        )  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """Everything one command runs: ``len(arms) * len(lrs) * len(seeds)`` runs. ``source``:
    a :class:`Source` or anything else with its ``prepare`` (e.g. SQuAD's)."""

    model: str
    vocab_dir: str | None
    source: Source
    output: Path
    arms: tuple[str, ...]
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    metric: str
    hyper: Hyper = Hyper()
    max_seq_length: int = 128
    select_fraction: float = 0.1
    eval_fraction: float = 0.2
    split_seed: int = 0
    device: torch.device = torch.device("cpu")
    save_best: bool = False
    reuse_random: Path | None = None

    @property
    def single(self) -> bool:
        return len(self.arms) == len(self.lrs) == len(self.seeds) == 1


def _split(n: int, fraction: float, split_seed: int, stream: str, flag: str):
    return fd.split_train_eval(n, fraction, ft.derive_seed(split_seed, stream), flag)


def prepare(plan: Plan, tok) -> tuple[Splits, dict, list[str]]:
    """Read, split and encode the data: ``(splits, data description, id2label)``.

    Raises:
        UserError: unreadable files, fewer than two classes in the fitted rows, a label of the
            eval file unknown to the training file.
    """
    src = plan.source
    train_read = src.read(src.train)
    skipped = {"train": train_read.skipped}
    rows = train_read.examples
    if src.eval is not None:
        eval_read = src.read(src.eval)
        skipped["eval"] = eval_read.skipped
        dev_ex, pool = eval_read.examples, np.arange(len(rows))
    else:
        pool, dev_idx = _split(
            len(rows), plan.eval_fraction, plan.split_seed, "eval_split", "--eval-fraction"
        )
        dev_ex = [rows[i] for i in dev_idx]
    fit, sel = _split(
        len(pool), plan.select_fraction, plan.split_seed, "select_split", "--select-fraction"
    )
    fit, sel = pool[fit], pool[sel]
    fd.build_label_map([rows[i].label for i in fit])  # the fitted rows alone need two classes
    if src.task is not None:
        id2label = list(src.task.labels)
    else:  # the classes are the training file's: an eval label it never shows cannot be learnt
        id2label = fd.build_label_map([e.label for e in rows])
    unknown = sorted({e.label for e in dev_ex} - set(id2label))
    if unknown:
        n = sum(1 for e in dev_ex if e.label in set(unknown))
        where = str(src.eval) if src.eval is not None else "the held-out rows"
        raise UserError(
            f"{where}: label(s) {unknown} ({n} rows) never appear in the training file "
            f"(its labels: {id2label}); fix the labels or the --label-column"
        )
    label2id = {lab: i for i, lab in enumerate(id2label)}
    train_all = fd.encode_examples(tok, rows, label2id, plan.max_seq_length)
    dev = fd.encode_examples(tok, dev_ex, label2id, plan.max_seq_length)
    splits = Splits(train_all.take(fit), train_all.take(sel), dev, len(id2label))
    info = {
        "train_file": str(src.train),
        "eval_file": str(src.eval) if src.eval is not None else None,
        "dev_held_out_of_train": src.eval is None,
        "rows": {"train": len(fit), "select": len(sel), "dev": len(dev)},
        "skipped": skipped,
        "split_seed": plan.split_seed,
        "select_fraction": plan.select_fraction,
        "eval_fraction": plan.eval_fraction if src.eval is None else None,
        # Same value for every run seed: the splits are a function of the split seed alone.
        "split_fingerprint": fingerprint(fit, sel, dev.labels),
    }
    return splits, info, id2label


def _describe(plan: Plan, info: dict, id2label: list[str]) -> str:
    n = info["rows"]
    name = plan.source.task.name if plan.source.task else plan.source.train.name
    lines = [
        f"finetune {name}: {n['train']} train / {n['select']} selection (held out of the "
        f"training file, --select-fraction {plan.select_fraction}, --split-seed "
        f"{plan.split_seed}) / {n['dev']} dev rows, labels {id2label}, metric {plan.metric}; "
        f"{len(plan.arms)} arm(s) x {len(plan.lrs)} LR x {len(plan.seeds)} seed(s) on "
        f"{plan.device}" + (" (frozen encoder)" if plan.hyper.freeze_encoder else "")
    ]
    if "frozen" in plan.arms:
        lines.append(
            "arm frozen: the pretrained encoder with embeddings and encoder layers frozen; "
            "the pooler and classifier train (arm pretrained: everything trains)"
        )
    if info["dev_held_out_of_train"]:
        lines.append(
            f"no --eval: the reported dev rows are {n['dev']} rows held out of --train "
            f"(--eval-fraction {plan.eval_fraction}); selection rows are held out of the rest"
        )
    return "\n".join(lines)


def _save(state: dict, model_cfg, id2label, tok_files, out_dir: Path) -> None:
    model = ft.BertForSequenceClassification(model_cfg, len(id2label))
    model.load_state_dict(state)
    ft.save_classifier(model, id2label, tok_files, out_dir)


def run_plan(plan: Plan) -> dict:
    """Run every (arm, LR, seed) of ``plan``, choose, write the outputs; returns the results
    (what ``results.json`` holds).

    Raises:
        UserError: unreadable model, tokenizer or data (see :func:`prepare`).
    """
    t0 = time.time()
    pretrained = ft.load_pretrained(plan.model)
    cfg = pretrained.config
    if plan.max_seq_length > cfg.max_position_embeddings:
        raise UserError(f"--max-seq-length exceeds the model's {cfg.max_position_embeddings}")
    vocab_dir = Path(plan.vocab_dir) if plan.vocab_dir else None
    tok, tok_files = fd.load_tokenizer(vocab_dir, pretrained)
    prep = plan.source.prepare(plan, tok)
    splits, info = prep.splits, prep.info
    out = Path(plan.output)
    out.mkdir(parents=True, exist_ok=True)
    print(prep.description, flush=True)
    for part, counts in info["skipped"].items():
        if counts:  # also in summary.json; said here so no row is lost silently
            print(f"finetune: skipped {sum(counts.values())} {part} rows: {dict(counts)}")
    hp = plan.hyper
    key = random_key(plan, splits, cfg, info)
    reuse = {}
    if plan.reuse_random is not None:
        reuse = reusable_random_runs(plan.reuse_random, key)
    results = {
        "task": prep.task,
        "metric": plan.metric,
        "reported": list(prep.reported),
        "labels": prep.labels,
        "model": str(plan.model),
        "data": info,
        "protocol": {
            "arms": list(plan.arms),
            "lrs": list(plan.lrs),
            "seeds": list(plan.seeds),
            **asdict(hp),
            "max_seq_length": plan.max_seq_length,
            "selection": "epoch per run and LR per arm (mean over seeds), on the selection rows",
        },
        "majority": prep.baseline,
        "device": str(plan.device),
        "torch_threads": torch.get_num_threads(),
        "random_key": key,
        "reused_random_from": str(plan.reuse_random) if reuse else None,
        "runs": [],
        "complete": False,
    }
    runs_dir = out / "runs"
    for seed in plan.seeds:  # seeds outermost: a stopped grid has whole seeds of every arm
        for lr in plan.lrs:
            for arm in plan.arms:
                if arm == "random" and (lr, seed) in reuse:  # deterministic: same record
                    results["runs"].append({**reuse[(lr, seed)], "reused": True})
                    print(report.run_line(reuse[(lr, seed)], plan.metric, hp.epochs) + " (reused)")
                    continue
                state = None if arm == "random" else pretrained.encoder_state
                on_epoch = report.print_epoch(plan.metric) if plan.single else None
                record, best = run_one(
                    splits,
                    cfg,
                    state,
                    arm,
                    lr,
                    seed,
                    hp,
                    plan.metric,
                    plan.device,
                    plan.single or plan.save_best,
                    on_epoch,
                    prep.kind,
                )
                print(report.run_line(record, plan.metric, hp.epochs), flush=True)
                if best is not None:
                    name = "best" if plan.single else f"{arm}-lr{lr:g}-seed{seed}"
                    prep.save(best, cfg, tok_files, out / name if plan.single else runs_dir / name)
                results["runs"].append(record)
                write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    results["choice"] = choose(results["runs"], plan.metric)
    results["paired"] = paired(results["choice"])  # pretrained - random, as always
    results["pairs"] = all_paired(results["choice"])  # every pair of arms that ran
    results["seconds"] = round(time.time() - t0, 1)
    results["complete"] = True
    if plan.save_best and not plan.single:  # keep the chosen LR's models, one per seed
        for arm, c in results["choice"].items():
            for seed in c["runs"]:
                src = runs_dir / f"{arm}-lr{c['lr']:g}-seed{seed}"
                shutil.rmtree(out / "best" / f"{arm}-seed{seed}", ignore_errors=True)
                (out / "best").mkdir(exist_ok=True)
                src.rename(out / "best" / f"{arm}-seed{seed}")
        shutil.rmtree(runs_dir, ignore_errors=True)
    write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    summary = report.markdown(results)
    write_text(out / "summary.md", summary)
    if plan.single:
        report.write_single_run_files(out, results)
    print(summary, end="", flush=True)
    return results
