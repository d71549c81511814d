"""Filling the [unusedN] slots of Google's vocab with frequent split words of a real corpus."""

from __future__ import annotations

import shutil

import pytest
from transformers import BertTokenizerFast

from ground.errors import UserError
from pipeline.vocab.extend import extend_vocab, unused_slots
from pipeline.vocab.files import build_tokenizer, load_vocab
from pipeline.vocab.word_counts import count_words, make_pretokenizer


@pytest.fixture(scope="module")
def base(corpus_dir):
    return load_vocab(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt").tokens


@pytest.fixture(scope="module")
def counts(corpus_dir):
    text = (corpus_dir / "books" / "1661.txt").read_text(encoding="utf-8")  # Sherlock Holmes
    return count_words([text], make_pretokenizer(True))


def test_unused_slots_of_google_vocab(base):
    slots = unused_slots(base)
    assert len(slots) == 994 and slots[0] == 1 and base[slots[0]] == "[unused0]"


def test_extend_fills_slots_with_the_best_scored_words(base, counts, corpus_dir, tmp_path):
    new, added = extend_vocab(base, counts, 40)
    slots = unused_slots(base)[:40]
    assert [a.id for a in added] == slots
    assert [i for i, (a, b) in enumerate(zip(base, new)) if a != b] == slots
    # The ranking, recomputed with transformers' tokenizer as the piece counter.
    shutil.copy(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt", tmp_path / "vocab.txt")
    ref = BertTokenizerFast.from_pretrained(str(tmp_path), do_lower_case=True)
    vocab = set(base)

    def score(word: str) -> tuple:
        pieces = ref.tokenize(word)
        if len(pieces) < 2 or "[UNK]" in pieces or word in vocab or counts[word] < 2:
            return None
        return (counts[word] * (len(pieces) - 1), counts[word])

    scored = {w: s for w in counts if (s := score(w)) is not None}
    assert {a.word for a in added} <= set(scored)
    worst_added = min(scored[a.word] for a in added)
    best_left = max(s for w, s in scored.items() if w not in {a.word for a in added})
    assert worst_added >= best_left
    assert all(a.pieces == len(ref.tokenize(a.word)) and a.count == counts[a.word] for a in added)
    assert "lestrade" not in vocab and "lestrade" in {a.word for a in added}
    # Each added word is now one token with its slot id.
    tok = build_tokenizer(new, lowercase=True)
    for a in added:
        assert tok.encode(a.word, add_special_tokens=False).ids == [a.id]


def test_extend_errors(base, counts):
    with pytest.raises(UserError, match="only 994"):
        extend_vocab(base, counts, 995)
    with pytest.raises(UserError, match=">= 0"):
        extend_vocab(base, counts, -1)
    with pytest.raises(UserError, match="only 0 words"):
        extend_vocab(base, {"the": 5, "holmes": 1}, 1)
    no_slots = [t for t in base if not t.startswith("[unused")]
    with pytest.raises(UserError, match="only 0"):
        extend_vocab(no_slots, counts, 1)
