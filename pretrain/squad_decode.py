"""From start/end logits to answer texts: n-best spans per window, the best over a question's
windows, mapped back to the context's characters (Google's ``run_squad.py`` rules).

Per window, the ``n_best`` positions with the highest start logits and the ``n_best`` with the
highest end logits (over the whole window, as the reference code does) give up to
``n_best**2`` pairs; a pair is kept when both ends are context tokens, ``end >= start``, the
span has at most ``max_answer_length`` tokens and the window is the start token's max-context
window. Its score is ``start_logit + end_logit``. A question's answer is its best-scoring span
over all its windows (the first window, then the first start, on a tie), cut out of the original
context by the tokens' character offsets, so spacing, case and accents are the context's own; a
question with no valid span gets the empty string (which scores 0).
"""

from __future__ import annotations

import numpy as np

from pretrain.squad_data import SquadFeatures


def window_candidates(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: np.ndarray,
    max_context: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> list[tuple[float, int, int]]:
    """The valid spans of one window among its top-``n_best`` starts x top-``n_best`` ends.

    ``start_logits``, ``end_logits``: float ``[T]`` (T = the window's real tokens, padding
    excluded); ``offsets``: ``[T, 2]``, ``-1`` for non-context tokens; ``max_context``: bool
    ``[T]``. Returns ``(score, start, end)`` token indices, best first (at most ``n_best**2``).
    """
    top_s = np.argsort(-start_logits, kind="stable")[:n_best]
    top_e = np.argsort(-end_logits, kind="stable")[:n_best]
    s, e = np.meshgrid(top_s, top_e, indexing="ij")  # [n_best, n_best]
    s, e = s.ravel(), e.ravel()
    ok = (
        (offsets[s, 0] >= 0)
        & (offsets[e, 0] >= 0)
        & (e >= s)
        & (e - s + 1 <= max_answer_length)
        & max_context[s]
    )
    s, e = s[ok], e[ok]
    score = start_logits[s].astype(np.float64) + end_logits[e]
    order = np.argsort(-score, kind="stable")
    return [(float(score[i]), int(s[i]), int(e[i])) for i in order]


def best_spans(
    features: SquadFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> list[tuple[int, int, int] | None]:
    """Per question of ``features``: ``(window, start token, end token)`` of its best span, or
    ``None``. ``start_logits``, ``end_logits``: float ``[N, L]`` (one row per window)."""
    best: list[tuple[float, int, int, int] | None] = [None] * len(features.questions)
    lengths = features.attention_mask.sum(1)
    for w in range(len(features)):
        t, q = int(lengths[w]), int(features.question[w])
        found = window_candidates(
            start_logits[w, :t],
            end_logits[w, :t],
            features.offsets[w, :t],
            features.max_context[w, :t],
            n_best,
            max_answer_length,
        )
        if found and (best[q] is None or found[0][0] > best[q][0]):
            best[q] = (found[0][0], w, found[0][1], found[0][2])
    return [None if b is None else b[1:] for b in best]


def span_text(features: SquadFeatures, window: int, start: int, end: int) -> str:
    """The context characters from token ``start``'s first to token ``end``'s last."""
    q = features.questions[int(features.question[window])]
    return q.context[features.offsets[window, start, 0] : features.offsets[window, end, 1]]


def predict_answers(
    features: SquadFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Question id -> predicted answer text ("" when no valid span), for every question."""
    spans = best_spans(features, start_logits, end_logits, n_best, max_answer_length)
    return {
        q.qid: "" if span is None else span_text(features, *span)
        for q, span in zip(features.questions, spans)
    }
