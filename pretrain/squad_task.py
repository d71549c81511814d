"""SQuAD 1.1 in the fine-tuning protocol: its source (read, split by article, window) and its
kind (span model and loss, n-best decoding, EM/F1), run by :func:`pretrain.compare.run_plan`.

Splits follow the classification protocol with articles in place of rows, so no article's
paragraphs are both trained on and scored (questions about one paragraph share its context, and
an article's paragraphs share its topic): without an eval file, ``eval_fraction`` of the training
file's articles are held out first as the reported set; ``select_fraction`` of the remaining
articles are the selection set; both drawn from the split seed alone (the same
:func:`pretrain.finetune.derive_seed` streams as classification rows). The selection metric is
F1 (``exact_match`` allowed); both are recorded for every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ground.errors import UserError
from pretrain import finetune as ft
from pretrain import squad_model as sm
from pretrain.compare import Prepared
from pretrain.finetune_data import split_train_eval
from pretrain.finetune_runs import Splits, fingerprint
from pretrain.squad_data import featurize, questions_of, read_squad
from pretrain.squad_decode import predict_answers
from pretrain.squad_metrics import squad_scores

METRICS = ("f1", "exact_match")


@dataclass(frozen=True)
class SquadKind:
    """Span extraction (:class:`pretrain.finetune_runs.Kind`): the data are
    :class:`pretrain.squad_data.SquadFeatures`, one training row per window."""

    n_best: int = 20
    max_answer_length: int = 30

    def build(self, cfg, encoder_state, seed):
        return sm.build_qa(cfg, encoder_state, seed)

    def head(self, model):
        return model.qa_outputs.weight

    def train_epoch(self, model, data, optimizer, scheduler, order, device):
        return sm.train_epoch(model, data, optimizer, scheduler, order, device)

    def evaluate(self, model, data, batch_size, device):
        """``{"exact_match", "f1"}`` over ``data``'s questions (fractions) and ``loss``: the
        mean span loss per window (nats)."""
        start, end, loss = sm.predict_logits(model, data, batch_size, device)
        answers = predict_answers(data, start, end, self.n_best, self.max_answer_length)
        return {**squad_scores(answers, data.golds()), "loss": loss}


def _save(state: dict, cfg, tok_files: dict, out_dir: Path) -> None:
    model = sm.BertForQuestionAnswering(cfg)
    model.load_state_dict(state)
    sm.save_qa(model, tok_files, out_dir)


@dataclass(frozen=True)
class SquadSource:
    """SQuAD v1.1 JSON files; ``eval`` is ``None`` when the reported articles are held out of
    ``train``. Window and decoding settings as in Google's ``run_squad.py``."""

    train: Path
    eval: Path | None = None
    doc_stride: int = 128
    max_query_length: int = 64
    n_best: int = 20
    max_answer_length: int = 30

    def split_articles(self, n_articles: int, plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(fit, select, dev)`` article indices of the training file (``dev`` empty when
        there is an eval file), from ``plan.split_seed`` alone."""
        pool, dev = np.arange(n_articles), np.arange(0)
        if self.eval is None:
            seed = ft.derive_seed(plan.split_seed, "eval_split")
            pool, dev = split_train_eval(n_articles, plan.eval_fraction, seed, "--eval-fraction")
        seed = ft.derive_seed(plan.split_seed, "select_split")
        fit, sel = split_train_eval(len(pool), plan.select_fraction, seed, "--select-fraction")
        return pool[fit], pool[sel], dev

    def prepare(self, plan, tok) -> Prepared:
        """Read, split by article and window the questions (each context tokenized once).

        Raises:
            UserError: unreadable or non-SQuAD files, too few articles to split, no question
                with a trainable answer, window lengths that leave no room for the context,
                a selection metric other than F1 or EM.
        """
        if plan.metric not in METRICS:
            raise UserError(f"--metric {plan.metric}: SQuAD selects on f1 or exact_match")
        file = read_squad(self.train)
        skipped = {"train": dict(file.skipped)}
        fit, sel, dev_art = self.split_articles(len(file.titles), plan)
        if self.eval is not None:
            eval_file = read_squad(self.eval)
            skipped["eval"] = eval_file.skipped
            dev_q, n_dev_articles = eval_file.questions, len(eval_file.titles)
        else:
            dev_q, n_dev_articles = questions_of(file.questions, dev_art), len(dev_art)
        fit_q = questions_of(file.questions, fit)
        untrainable = sum(q.answer_start < 0 for q in fit_q)
        if untrainable:  # Google's run_squad skips these too
            skipped["train"]["first answer not at its answer_start"] = untrainable
            fit_q = [q for q in fit_q if q.answer_start >= 0]
        sel_q = questions_of(file.questions, sel)
        if not fit_q or not sel_q or not dev_q:
            raise UserError(f"{self.train}: a split has no question; too few articles?")
        sets = [
            featurize(tok, qs, plan.max_seq_length, self.doc_stride, self.max_query_length)
            for qs in (fit_q, sel_q, dev_q)
        ]
        ids = [np.frombuffer(" ".join(q.qid for q in s.questions).encode(), np.uint8) for s in sets]
        info = {
            "train_file": str(self.train),
            "eval_file": str(self.eval) if self.eval is not None else None,
            "dev_held_out_of_train": self.eval is None,
            "unit": "questions",
            "split_by": "article",
            "rows": {"train": len(fit_q), "select": len(sel_q), "dev": len(dev_q)},
            "articles": {"train": len(fit), "select": len(sel), "dev": n_dev_articles},
            "windows": {k: len(s) for k, s in zip(("train", "select", "dev"), sets)},
            "skipped": skipped,
            "split_seed": plan.split_seed,
            "select_fraction": plan.select_fraction,
            "eval_fraction": plan.eval_fraction if self.eval is None else None,
            "split_fingerprint": fingerprint(*ids),  # question ids: the split seed's alone
            "squad": {
                "doc_stride": self.doc_stride,
                "max_query_length": self.max_query_length,
                "n_best": self.n_best,
                "max_answer_length": self.max_answer_length,
            },
        }
        other = [m for m in METRICS if m != plan.metric]
        return Prepared(
            "squad", Splits(*sets, num_labels=2), info,
            SquadKind(self.n_best, self.max_answer_length), self.describe(plan, info), None,
            None, (plan.metric, *other), _save,
        )  # fmt: skip

    def describe(self, plan, info: dict) -> str:
        """The lines printed before the grid: sizes, windows, split, arms."""
        n, a, w = info["rows"], info["articles"], info["windows"]
        lines = [
            f"finetune squad: {n['train']} train / {n['select']} selection / {n['dev']} dev "
            f"questions ({a['train']} / {a['select']} / {a['dev']} articles; "
            f"{w['train']} / {w['select']} / {w['dev']} windows of <= {plan.max_seq_length} "
            f"tokens, doc stride {self.doc_stride}); selection articles held out of the "
            f"training file (--select-fraction {plan.select_fraction}, --split-seed "
            f"{plan.split_seed}); metric {plan.metric}; {len(plan.arms)} arm(s) x "
            f"{len(plan.lrs)} LR x {len(plan.seeds)} seed(s) on {plan.device}"
            + (" (frozen encoder)" if plan.hyper.freeze_encoder else "")
        ]
        if self.eval is None:
            lines.append(
                f"no --eval: the reported dev questions are those of {a['dev']} articles held "
                f"out of --train (--eval-fraction {plan.eval_fraction} of its articles)"
            )
        return "\n".join(lines)
