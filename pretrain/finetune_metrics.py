"""Classification metrics in numpy (GLUE's definitions) and statistics over seeds.

Predictions and gold labels are label ids, int arrays ``[N]``. The binary F1 is the F1 of the
positive class, label id 1 (GLUE: "1" = acceptable in CoLA, paraphrase in MRPC); the Matthews
correlation is the multi-class one (Gorodkin 2004), equal to the usual binary formula for two
classes. Degenerate cases follow scikit-learn, which GLUE's scores use: a correlation with an
undefined denominator (e.g. every prediction one class) is 0, and so is an F1 with no true
positive.
"""

from __future__ import annotations

import math

import numpy as np

# Every metric a run records; a task names one of them as its headline (see pretrain.glue).
METRICS = ("accuracy", "f1", "mcc", "macro_f1")
LABELS = {
    "accuracy": "accuracy",
    "f1": "F1",
    "mcc": "MCC",
    "macro_f1": "macro-F1",
    "exact_match": "EM",  # SQuAD's (pretrain.squad_metrics)
}


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    """Share of ``pred == gold`` (0.0 for no rows)."""
    return float((pred == gold).mean()) if len(gold) else 0.0


def f1_positive(pred: np.ndarray, gold: np.ndarray, positive: int = 1) -> float:
    """F1 of class ``positive``: 2TP / (2TP + FP + FN); 0 when there is no true positive (also
    when nothing is predicted positive, where precision is undefined)."""
    tp = int(((pred == positive) & (gold == positive)).sum())
    fp = int(((pred == positive) & (gold != positive)).sum())
    fn = int(((pred != positive) & (gold == positive)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews_corrcoef(pred: np.ndarray, gold: np.ndarray, num_labels: int) -> float:
    """Matthews correlation in [-1, 1]; 0 when undefined (one class predicted or present)."""
    conf = np.zeros((num_labels, num_labels), np.float64)
    np.add.at(conf, (gold, pred), 1.0)
    t, p = conf.sum(1), conf.sum(0)  # true and predicted count of each class
    n, correct = conf.sum(), np.trace(conf)
    cov_tp = correct * n - float(t @ p)
    denom = math.sqrt((n * n - float(p @ p)) * (n * n - float(t @ t)))
    return float(cov_tp / denom) if denom else 0.0


def macro_f1(pred: np.ndarray, gold: np.ndarray, num_labels: int) -> float:
    """Mean F1 over the classes present in gold or predictions (a class absent from both has no
    defined F1; counting it as 0 would penalise a small eval split)."""
    f1s = []
    for c in range(num_labels):
        tp = int(((pred == c) & (gold == c)).sum())
        fp = int(((pred == c) & (gold != c)).sum())
        fn = int(((pred != c) & (gold == c)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def label_metrics(pred: np.ndarray, gold: np.ndarray, num_labels: int) -> dict:
    """Every metric of :data:`METRICS` for predicted vs gold ids (``f1`` only for 2 labels)."""
    out = {
        "accuracy": accuracy(pred, gold),
        "mcc": matthews_corrcoef(pred, gold, num_labels),
        "macro_f1": macro_f1(pred, gold, num_labels),
    }
    if num_labels == 2:
        out["f1"] = f1_positive(pred, gold, 1)
    return out


def logit_metrics(logits: np.ndarray, gold: np.ndarray) -> dict:
    """:func:`label_metrics` of ``argmax(logits)`` (``[N, C]``) plus ``loss``: mean
    cross-entropy in nats."""
    z = logits.astype(np.float64)
    z = z - z.max(1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(1, keepdims=True))
    loss = float(-log_probs[np.arange(len(gold)), gold].mean()) if len(gold) else 0.0
    return {**label_metrics(logits.argmax(1), gold, logits.shape[1]), "loss": loss}


def classification_metrics(pred: np.ndarray, gold: np.ndarray, num_labels: int) -> dict:
    """Accuracy and macro F1 of predicted vs gold label ids (both ``[N]``)."""
    return {"accuracy": accuracy(pred, gold), "macro_f1": macro_f1(pred, gold, num_labels)}


def majority_baseline(labels: np.ndarray) -> tuple[int, float]:
    """``(label id, accuracy)`` of always predicting the most frequent of ``labels`` (ties: the
    lower id)."""
    counts = np.bincount(labels)
    return int(counts.argmax()), float(counts.max() / len(labels))


def constant_metrics(label: int, gold: np.ndarray, num_labels: int) -> dict:
    """Every metric of always predicting ``label`` on ``gold`` (the majority-class baseline)."""
    return label_metrics(np.full_like(gold, label), gold, num_labels)


def mean_std(values) -> dict:
    """``{"mean", "std", "min", "max", "n"}`` of a list of numbers; ``std`` is the sample
    standard deviation (n - 1), ``None`` for fewer than two values."""
    a = np.asarray(list(values), np.float64)
    if not len(a):
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    std = float(a.std(ddof=1)) if len(a) > 1 else None
    return {
        "mean": float(a.mean()),
        "std": std,
        "min": float(a.min()),
        "max": float(a.max()),
        "n": len(a),
    }
