"""SQuAD 1.1 exact match and F1, by the rules of the official evaluation script (v1.1).

Written from the rules, not copied. A prediction and each gold answer are normalised:

1. lower-cased;
2. every ASCII punctuation character (Python's ``string.punctuation``) removed; other
   characters, e.g. the dash "–" or curly quotes, stay;
3. the articles ``a``, ``an``, ``the`` removed where they are whole words (``\\b`` boundaries),
   each replaced by a space;
4. whitespace runs collapsed to one space, ends stripped.

Exact match is 1 when the normalised strings are equal. F1 compares the normalised strings'
whitespace tokens as bags (multisets): overlap = the size of their intersection; 0 when the
overlap is 0 (so an empty prediction scores 0, even against an empty gold answer), else the
harmonic mean of precision (overlap / prediction tokens) and recall (overlap / gold tokens).
A question's score is the maximum over its gold answers; a set's score is the mean over its
questions, a question without a prediction counting 0.

Scores here are fractions in [0, 1]; the official script prints them times 100 (EM 80.8 =
0.808).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """The official normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Token-bag F1 of the normalised strings (0.0 when they share no token)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def question_scores(prediction: str, golds: Iterable[str]) -> tuple[float, float]:
    """``(exact match, F1)`` of one prediction: each the maximum over the gold answers."""
    golds = list(golds)
    if not golds:
        raise ValueError("a question needs at least one gold answer")
    return max(exact_match(prediction, g) for g in golds), max(f1(prediction, g) for g in golds)


def squad_scores(predictions: Mapping[str, str], golds: Mapping[str, Iterable[str]]) -> dict:
    """``{"exact_match", "f1"}``: means over every question of ``golds`` (question id -> gold
    answer texts); a question missing from ``predictions`` scores 0. ``{0, 0}`` for no question.
    """
    em = f = 0.0
    for qid, answers in golds.items():
        pred = predictions.get(qid)
        if pred is None:
            continue
        e, s = question_scores(pred, answers)
        em, f = em + e, f + s
    n = len(golds)
    return {"exact_match": em / n if n else 0.0, "f1": f / n if n else 0.0}
