"""SQuAD 1.1 EM and F1 on hand-checked examples (the official v1.1 script's rules)."""

from __future__ import annotations

import pytest

from pretrain.squad_metrics import exact_match, f1, normalize_answer, question_scores, squad_scores


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The  Denver Broncos!", "denver broncos"),  # case, punctuation, article, spaces
        ("an apple, a day", "apple day"),  # every article goes, each leaves a space
        ("theatre of Anathema", "theatre of anathema"),  # whole words only
        ("A-ha", "aha"),  # "-" is punctuation: removed before articles, so no "a" word is left
        ("Levi's Stadium", "levis stadium"),
        ("24–10", "24–10"),  # the en dash is not ASCII punctuation: it stays
        ("  \tthe\n", ""),
    ],
)
def test_normalisation(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_and_f1_by_hand():
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    # pred {denver, broncos}, gold {broncos}: overlap 1, precision 1/2, recall 1 -> 2/3
    assert f1("Denver Broncos", "Broncos") == pytest.approx(2 / 3)
    # bags, not sets: pred {cat x3}, gold {cat}: overlap 1, precision 1/3, recall 1 -> 1/2
    assert f1("the cat cat, cat", "a cat") == pytest.approx(0.5)
    # pred {in, 1895}, gold {1895, to, 1943}: overlap 1, p 1/2, r 1/3 -> 2/5
    assert f1("in 1895", "1895 to 1943") == pytest.approx(0.4)
    assert f1("Santa Clara", "Levi's Stadium") == 0.0


def test_maximum_over_several_gold_answers():
    golds = ["Santa Clara, California", "Levi's Stadium", "Levi's Stadium in the San Francisco"]
    assert question_scores("Levi's Stadium", golds) == (1.0, 1.0)
    # best EM 0; best F1 against "Santa Clara, California": overlap 2, p 1, r 2/3 -> 0.8
    assert question_scores("Clara, California", golds) == (0.0, pytest.approx(0.8))
    assert question_scores("levis stadium", golds[::-1]) == (1.0, 1.0)  # order does not matter
    with pytest.raises(ValueError):
        question_scores("x", [])


def test_empty_prediction_scores_zero():
    assert question_scores("", ["Denver Broncos", "Broncos"]) == (0.0, 0.0)
    # The official v1.1 quirk: a gold answer that normalises to nothing (an article alone)
    # matches an empty prediction exactly, but F1 is 0 (no shared token).
    assert question_scores("", ["The"]) == (1.0, 0.0)


def test_set_scores_are_means_and_a_missing_prediction_counts_zero():
    golds = {"q1": ["Denver Broncos"], "q2": ["Carolina Panthers", "Panthers"], "q3": ["2015"]}
    preds = {"q1": "Denver Broncos", "q2": "the Carolina Panthers team"}  # q3 unanswered
    # q1 (1, 1); q2 EM 0, F1 vs "Carolina Panthers": overlap 2, p 2/3, r 1 -> 0.8; q3 (0, 0)
    got = squad_scores(preds, golds)
    assert got == {"exact_match": pytest.approx(1 / 3), "f1": pytest.approx(1.8 / 3)}
    assert squad_scores({}, {}) == {"exact_match": 0.0, "f1": 0.0}
