"""SQuAD reading, article splits, windows with a doc stride, answer spans and n-best decoding, on
a slice of the real dev file (corpus/testdata/squad, see corpus/ATTRIBUTION.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ground.errors import UserError
from pretrain.compare import Plan
from pretrain.squad_data import featurize, questions_of, read_squad, window_starts
from pretrain.squad_decode import predict_answers, span_text, window_candidates
from pretrain.squad_task import SquadSource
from tests.conftest import TESTDATA

SLICE = TESTDATA / "squad" / "dev-v1.1-slice.json"


@pytest.fixture(scope="module")
def tok(corpus_dir):
    from tokenizers import BertWordPieceTokenizer, Tokenizer

    vocab = corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"
    return Tokenizer.from_str(BertWordPieceTokenizer(str(vocab), lowercase=True).to_str())


@pytest.fixture(scope="module")
def questions():
    return read_squad(SLICE).questions


def test_reads_the_slice(questions):
    file = read_squad(SLICE)
    assert file.titles == ["Super_Bowl_50", "Warsaw", "Normans", "Nikola_Tesla"]
    assert len(questions) == 32 and not file.skipped
    q = questions[0]
    assert (q.qid, q.article, q.answers) == ("56be4db0acb8001400a502ec", 0, ("Denver Broncos",) * 3)
    assert q.context[q.answer_start :].startswith("Denver Broncos")
    assert all(q.answer_start >= 0 for q in questions)


def test_bad_files_are_one_line_errors(tmp_path):
    cases = {"a.json": "not json", "b.json": '{"data": {}}', "c.json": '{"data": []}'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UserError):
            read_squad(tmp_path / name)
    with pytest.raises(UserError, match="no such file"):
        read_squad(tmp_path / "missing.json")


def test_long_context_splits_into_strided_windows(tok, questions):
    q = max(questions, key=lambda q: len(q.context))
    feats = featurize(tok, [q], max_seq_length=48, doc_stride=16, max_query_length=16)
    context = tok.encode(q.context, add_special_tokens=False).ids
    head = min(16, len(tok.encode(q.question, add_special_tokens=False).ids)) + 2
    spans = window_starts(len(context), 48 - head - 1, 16)
    assert len(feats) == len(spans) >= 5 and (feats.question == 0).all()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    for w, (start, length) in enumerate(spans):
        n = int(feats.attention_mask[w].sum())
        assert start == 16 * w and n == head + length + 1 <= 48
        ids = feats.input_ids[w]
        assert ids[0] == cls and ids[head - 1] == sep and ids[n - 1] == sep
        assert ids[head : n - 1].tolist() == context[start : start + length]
        assert feats.token_type_ids[w, :n].tolist() == [0] * head + [1] * (length + 1)
        assert (feats.offsets[w, head : n - 1] >= 0).all() and (feats.offsets[w, :head] < 0).all()
    assert spans[-1][0] + spans[-1][1] == len(context)  # the last window reaches the end
    # Each context token may start an answer in exactly one window: its max-context one.
    starts = feats.offsets[..., 0][feats.max_context]
    assert sorted(starts.tolist()) == sorted(set(starts.tolist())) and len(starts) == len(context)


def test_answer_spans_decode_to_the_answer_and_other_windows_target_cls(tok, questions):
    feats = featurize(tok, questions, max_seq_length=64, doc_stride=24, max_query_length=24)
    assert len(feats) > 2 * len(questions)  # most contexts need several windows
    inside = np.zeros(len(questions), int)
    cls_windows, inexact = 0, set()
    for w, (s, e) in enumerate(feats.labels):
        q = questions[feats.question[w]]
        a0, a1 = q.answer_start, q.answer_start + len(q.answers[0])
        off = feats.offsets[w][feats.offsets[w, :, 0] >= 0]
        if s == e == 0:  # the answer is not wholly inside this window
            assert not (off[0, 0] <= a0 and a1 <= off[-1, 1])
            cls_windows += 1
            continue
        text = span_text(feats, w, s, e)
        assert q.answers[0] in text  # the tokens covering the answer's characters
        if text != q.answers[0]:
            inexact.add((q.answers[0], text))
        inside[feats.question[w]] += 1
    assert (inside >= 1).all() and cls_windows > len(questions)
    # Spans are whole tokens: one gold answer of the real file is the "four" of "fourth", which
    # only the token "fourth" covers; every other answer decodes exactly.
    assert inexact == {("four", "fourth")}


def test_n_best_pairs_of_one_window():
    # Positions 0-2: [CLS] question [SEP] (offsets -1); 3-7: context tokens.
    offsets = np.array([[-1, -1]] * 3 + [[0, 3], [4, 9], [10, 12], [13, 20], [21, 25]])
    start = np.array([9.0, 0, 0, 1, 5, 0, 0, 2])  # [CLS] has the best start logit
    end = np.array([9.0, 0, 0, 0, 1, 0, 6, 3])
    mc = np.ones(8, bool)
    # top-3 starts {0, 4, 7} x top-3 ends {0, 6, 7}: [CLS] pairs and end < start are dropped
    assert window_candidates(start, end, offsets, mc, 3, 30) == [(11, 4, 6), (8, 4, 7), (5, 7, 7)]
    assert window_candidates(start, end, offsets, mc, 3, 2) == [(5, 7, 7)]  # at most 2 tokens
    assert window_candidates(start, end, offsets, mc, 1, 30) == []  # only [CLS] x [CLS]
    mc[4] = False  # token 4 has more context in another window: no answer starts on it here
    assert window_candidates(start, end, offsets, mc, 3, 30) == [(5, 7, 7)]


def test_best_span_over_windows_maps_back_to_the_context(tok, questions):
    q = questions[0]  # "Denver Broncos", cased in the context, lower-cased by the tokenizer
    feats = featurize(tok, [q], max_seq_length=48, doc_stride=16, max_query_length=16)
    labelled = [w for w in range(len(feats)) if feats.labels[w, 0] > 0]
    assert len(labelled) >= 2  # the answer is inside two windows; it may start in one only:
    (best,) = [w for w in labelled if feats.max_context[w, feats.labels[w, 0]]]
    other = [w for w in range(len(feats)) if w not in labelled]
    start, end = np.zeros(feats.input_ids.shape), np.zeros(feats.input_ids.shape)
    start[other, 0] = end[other, 0] = 10.0  # windows without the answer: [CLS] scores best ...
    s, e = feats.labels[best]
    start[best, s], end[best, e] = 3.0, 3.0  # ... but [CLS] is never an answer in SQuAD 1.1
    assert predict_answers(feats, start, end) == {q.qid: "Denver Broncos"}  # the context's case
    w = other[-1]
    p = int(np.argmax(feats.max_context[w]))  # a token that may start an answer in window w
    start[w, p], end[w, p] = 3.5, 3.5  # a better span in another window wins
    assert predict_answers(feats, start, end)[q.qid] == span_text(feats, w, p, p)
    assert span_text(feats, w, p, p) == q.context[slice(*feats.offsets[w, p])]
    zeros = np.zeros(feats.input_ids.shape)
    assert predict_answers(feats, zeros, zeros, n_best=1) == {q.qid: ""}  # only [CLS]: empty


def test_article_split_depends_on_the_split_seed(questions, tmp_path):
    source = SquadSource(SLICE)

    def split(**kw):
        plan = Plan("m", None, source, tmp_path, ("pretrained",), (1e-3,), (0,), "f1", **kw)
        return [a.tolist() for a in source.split_articles(4, plan)]

    fit, sel, dev = split(eval_fraction=0.25)
    assert sorted(fit + sel + dev) == [0, 1, 2, 3] and len(dev) == len(sel) == 1
    assert split(eval_fraction=0.25) == [fit, sel, dev]  # the split seed decides, nothing else
    assert any(split(eval_fraction=0.25, split_seed=s) != [fit, sel, dev] for s in range(1, 6))
    qs = [questions_of(questions, np.array(a)) for a in (fit, sel, dev)]
    assert sum(map(len, qs)) == 32 and not {q.qid for q in qs[0]} & {q.qid for q in qs[2]}
    with_eval = SquadSource(SLICE, eval=SLICE)
    plan = Plan("m", None, with_eval, tmp_path, ("pretrained",), (1e-3,), (0,), "f1")
    fit, sel, dev = with_eval.split_articles(4, plan)
    assert len(fit) == 3 and len(sel) == 1 and len(dev) == 0


@pytest.mark.shared
def test_full_dev_file_split_by_article(shared_dir):
    file = read_squad(shared_dir / "squad" / "dev-v1.1.json")
    assert len(file.questions) == 10570 and len(file.titles) == 48 and not file.skipped
    source = SquadSource(Path("dev-v1.1.json"))
    plan = Plan("m", None, source, Path("."), ("pretrained",), (1e-3,), (0,), "f1")
    parts = source.split_articles(48, plan)
    assert [len(p) for p in parts] == [34, 4, 10]  # 20% of 48 held out, then 10% of 38
    assert sorted(np.concatenate(parts).tolist()) == list(range(48))
    counts = [len(questions_of(file.questions, p)) for p in parts]
    assert sum(counts) == 10570 and min(counts) > 0
    data = json.loads((shared_dir / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))
    assert file.questions[0].context == data["data"][0]["paragraphs"][0]["context"]
