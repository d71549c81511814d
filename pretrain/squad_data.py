"""SQuAD 1.1 data: read the JSON as distributed, split it by article, cut contexts into windows.

File layout (``train-v1.1.json`` / ``dev-v1.1.json``): ``{"data": [article, ...]}``, an article
``{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text",
"answer_start"}, ...]}]}]}``; ``answer_start`` is a character offset into the context. The dev
file has 10,570 questions in 48 articles, most with three (often equal) gold answers.

Windows follow Google's ``run_squad.py``: ``[CLS] question [SEP] context piece [SEP]``, the
question cut to ``max_query_length`` tokens, the context cut into pieces of at most
``max_seq_length - len(question) - 3`` tokens whose starts are ``doc_stride`` tokens apart (the
last piece ends at the context's end). The training target is the first gold answer's token span,
found from the tokenizer's character offsets; a window that does not contain the whole span
targets ``[CLS]`` (index 0) for both start and end. A token seen by several windows has its
"max context" in the one where ``min(left, right) + 0.01 * window length`` is largest (the first
on a tie): only there may a predicted answer start on it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ground.errors import UserError


@dataclass(frozen=True)
class Question:
    """One SQuAD question. ``answers``: gold texts in file order (duplicates kept);
    ``answer_start``: character offset of ``answers[0]`` in ``context``, ``-1`` when that text
    is not there (the question is then not trained on, but still scored)."""

    qid: str
    question: str
    context: str
    article: int
    answers: tuple[str, ...]
    answer_start: int


@dataclass(frozen=True)
class SquadFile:
    """The questions of a file in file order, the article titles (``Question.article``
    indexes them) and questions skipped, by reason."""

    questions: list[Question]
    titles: list[str]
    skipped: dict[str, int]


def _get(obj, key: str, kind, where: str):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind):
        raise UserError(f"{where}: expected a {kind.__name__} {key!r}; is this a SQuAD file?")
    return value


def read_squad(path: str | Path) -> SquadFile:
    """Read a SQuAD v1.1 JSON file. Questions without answers or marked ``is_impossible``
    (SQuAD 2.0) are skipped and counted.

    Raises:
        UserError: missing or unreadable file, not the SQuAD layout, no question.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a JSON file ({e})") from None
    questions, titles, skipped = [], [], Counter()
    for a, article in enumerate(_get(data, "data", list, str(path))):
        titles.append(str(article.get("title", a)) if isinstance(article, dict) else str(a))
        for p, para in enumerate(_get(article, "paragraphs", list, f"{path}: data[{a}]")):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context = _get(para, "context", str, where)
            for qa in _get(para, "qas", list, where):
                answers = [x for x in _get(qa, "answers", list, where) if isinstance(x, dict)]
                texts = tuple(str(x.get("text", "")) for x in answers)
                if qa.get("is_impossible") or not any(t.strip() for t in texts):
                    skipped["no answer (SQuAD 2.0 unanswerable?)"] += 1
                    continue
                first, start = texts[0], answers[0].get("answer_start")
                if not isinstance(start, int) or context[start : start + len(first)] != first:
                    start = -1  # no training target; the question is still scored
                qid = str(_get(qa, "id", str, where))
                questions.append(
                    Question(qid, _get(qa, "question", str, where), context, a, texts, start)
                )
    if not questions:
        raise UserError(f"{path}: no SQuAD questions (skipped: {dict(skipped)})")
    return SquadFile(questions, titles, dict(sorted(skipped.items())))


def questions_of(questions: list[Question], articles: np.ndarray) -> list[Question]:
    """The questions whose article index is in ``articles``, in file order."""
    keep = set(int(a) for a in articles)
    return [q for q in questions if q.article in keep]


@dataclass(frozen=True)
class SquadFeatures:
    """The windows of a set of questions. ``N`` windows, ``L`` = the longest window.

    ``input_ids``, ``token_type_ids``, ``attention_mask``: int64 ``[N, L]`` (pad id 0, mask 0);
    ``labels``: int64 ``[N, 2]`` target start and end token (``[0, 0]`` = ``[CLS]``: the
    answer is not in the window); ``question``: int64 ``[N]`` index into ``questions``;
    ``offsets``: int32 ``[N, L, 2]`` character span of each context token in its question's
    context, ``-1`` for ``[CLS]``, question, ``[SEP]`` and padding tokens; ``max_context``:
    bool ``[N, L]`` (see the module docstring).
    """

    questions: list[Question]
    input_ids: np.ndarray
    token_type_ids: np.ndarray
    attention_mask: np.ndarray
    labels: np.ndarray
    question: np.ndarray
    offsets: np.ndarray
    max_context: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def golds(self) -> dict[str, tuple[str, ...]]:
        """Question id -> gold answer texts, for :func:`pretrain.squad_metrics.squad_scores`."""
        return {q.qid: q.answers for q in self.questions}


def window_starts(n_tokens: int, max_doc: int, doc_stride: int) -> list[tuple[int, int]]:
    """``(start, length)`` of each context window (Google's rule: a window is at most
    ``max_doc`` tokens, the next starts ``min(length, doc_stride)`` later, the last one reaches
    the end). No window for an empty context."""
    spans, start = [], 0
    while start < n_tokens:
        length = min(n_tokens - start, max_doc)
        spans.append((start, length))
        if start + length == n_tokens:
            break
        start += min(length, doc_stride)
    return spans


def max_context_window(spans: list[tuple[int, int]], n_tokens: int) -> np.ndarray:
    """``[n_tokens]`` index of the window giving each token its most context (first on ties)."""
    score = np.full((len(spans), n_tokens), -np.inf)
    for w, (s, length) in enumerate(spans):
        pos = np.arange(s, s + length)
        score[w, pos] = np.minimum(pos - s, s + length - 1 - pos) + 0.01 * length
    return score.argmax(0)


def answer_token_span(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """First and last token (indices into ``offsets``, ``[T, 2]`` character spans) covering the
    characters ``[start, end)``; ``None`` when no token does (e.g. only whitespace)."""
    first = int(np.searchsorted(offsets[:, 1], start, side="right"))
    last = int(np.searchsorted(offsets[:, 0], end, side="left")) - 1
    return (first, last) if first <= last else None


def featurize(
    tokenizer,
    questions: list[Question],
    max_seq_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
) -> SquadFeatures:
    """Tokenize ``questions`` (a ``tokenizers.Tokenizer``; each distinct context once) into
    windows; see the module docstring.

    Raises:
        UserError: lengths that leave no room for the context, a tokenizer without [CLS]/[SEP].
    """
    if max_seq_length - max_query_length - 3 < 1 or doc_stride < 1:
        raise UserError(
            f"--max-seq-length {max_seq_length} leaves no context tokens after a "
            f"--max-query-length {max_query_length} question (or --doc-stride < 1)"
        )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None or tokenizer.token_to_id("[PAD]") not in (None, 0):
        raise UserError("the tokenizer is not a BERT WordPiece one ([CLS], [SEP], [PAD] = 0)")
    contexts = list(dict.fromkeys(q.context for q in questions))
    encoded = tokenizer.encode_batch(contexts, add_special_tokens=False)
    by_context = {c: (np.array(e.ids, np.int64), np.array(e.offsets, np.int32).reshape(-1, 2))
                  for c, e in zip(contexts, encoded)}  # fmt: skip
    queries = tokenizer.encode_batch([q.question for q in questions], add_special_tokens=False)
    rows: list[tuple] = []  # (question, ids, n_query, offsets [n, 2], max_context [n], label)
    for qi, (q, query) in enumerate(zip(questions, queries)):
        ids, offsets = by_context[q.context]
        qids = query.ids[:max_query_length]
        spans = window_starts(len(ids), max_seq_length - len(qids) - 3, doc_stride)
        best = max_context_window(spans, len(ids))
        answer = None
        if q.answer_start >= 0:
            end = q.answer_start + len(q.answers[0])
            answer = answer_token_span(offsets, q.answer_start, end) if len(ids) else None
        for w, (s, length) in enumerate(spans):
            head = len(qids) + 2  # [CLS] question [SEP]
            label = (0, 0)
            if answer is not None and s <= answer[0] and answer[1] < s + length:
                label = (answer[0] - s + head, answer[1] - s + head)
            seq = [cls_id, *qids, sep_id, *ids[s : s + length].tolist(), sep_id]
            rows.append((qi, seq, head, offsets[s : s + length], best[s : s + length] == w, label))
    if not rows:
        raise UserError("no SQuAD window: every context is empty")
    n, width = len(rows), max(len(r[1]) for r in rows)
    input_ids = np.zeros((n, width), np.int64)
    token_type_ids, attention_mask = np.zeros_like(input_ids), np.zeros_like(input_ids)
    offsets_out = np.full((n, width, 2), -1, np.int32)
    max_context = np.zeros((n, width), bool)
    for i, (_, seq, head, off, mc, _) in enumerate(rows):
        input_ids[i, : len(seq)] = seq
        attention_mask[i, : len(seq)] = 1
        token_type_ids[i, head : len(seq)] = 1
        offsets_out[i, head : head + len(off)] = off
        max_context[i, head : head + len(mc)] = mc
    labels = np.array([r[5] for r in rows], np.int64).reshape(n, 2)
    question = np.array([r[0] for r in rows], np.int64)
    return SquadFeatures(
        questions, input_ids, token_type_ids, attention_mask, labels, question, offsets_out,
        max_context,
    )  # fmt: skip
