"""The deterministic WordPiece trainer, against HF's trainer and a naive reference."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import WordPiece

from ground.errors import UserError
from pipeline.vocab.files import build_tokenizer
from pipeline.vocab.word_counts import count_words, make_pretokenizer, merge_counts
from pipeline.vocab.wordpiece import (
    SPECIAL_TOKENS,
    WordPieceConfig,
    special_layout,
    train_wordpiece,
)


def read_book(path: Path) -> str:
    """Gutenberg naming: N-8.txt is ISO-8859-1, the others UTF-8 (maybe with a BOM)."""
    raw = path.read_bytes()
    return raw.decode("latin-1") if path.name.endswith("-8.txt") else raw.decode("utf-8-sig")


@pytest.fixture(scope="module")
def books(corpus_dir) -> list[str]:
    return [read_book(p) for p in sorted((corpus_dir / "books").glob("*.txt"))]


@pytest.fixture(scope="module")
def book_counts(books) -> Counter:
    return count_words(books, make_pretokenizer(lowercase=True))


def _hf_vocab(counts, config: WordPieceConfig) -> set[str]:
    """HF's WordPieceTrainer on a corpus whose words are exactly ``counts``."""

    def corpus():
        for word, n in counts.items():
            while n > 0:
                k = min(n, 500)
                yield " ".join([word] * k)
                n -= k

    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        limit_alphabet=config.limit_alphabet,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    return set(tok.get_vocab())


@pytest.mark.parametrize(
    "config",
    [
        WordPieceConfig(vocab_size=8000, min_frequency=2),
        WordPieceConfig(vocab_size=10**6, min_frequency=3, allow_smaller=True),
    ],
)
def test_matches_hf_wordpiece_trainer(book_counts, config):
    ours = set(train_wordpiece(book_counts, config).tokens)
    hf = _hf_vocab(book_counts, config)
    assert len(ours) > 5000
    assert len(ours & hf) / max(len(ours), len(hf)) >= 0.99


def _naive_train(counts, config: WordPieceConfig) -> list[str]:
    """Reference merge loop: recount every pair from scratch before each merge."""
    items = sorted(counts.items())
    alphabet = sorted({ch for w, _ in items for ch in w})
    tokens = special_layout(config.n_unused) + alphabet
    tokens += ["##" + ch for ch in sorted({ch for w, _ in items for ch in w[1:]})]
    ids = {t: i for i, t in enumerate(tokens)}
    words = [[ids[w[0]]] + [ids["##" + ch] for ch in w[1:]] for w, _ in items]
    while len(tokens) < config.vocab_size:
        pairs = Counter()
        for word, (_, c) in zip(words, items):
            for p in zip(word, word[1:]):
                pairs[p] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < config.min_frequency:
            break
        a, b = tokens[best[0]], tokens[best[1]]
        new = a + b.removeprefix("##")
        if new not in ids:
            ids[new] = len(tokens)
            tokens.append(new)
        for k, word in enumerate(words):
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(ids[new])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            words[k] = out
    return tokens


def test_incremental_merge_loop_equals_naive_recount(corpus_dir):
    sst = (corpus_dir / "finetune" / "glue-sst2-dev.tsv").read_text(encoding="utf-8")
    counts = {w: c for w, c in count_words([sst], make_pretokenizer(True)).items() if c >= 3}
    config = WordPieceConfig(vocab_size=300, min_frequency=2, n_unused=2)
    assert train_wordpiece(counts, config).tokens == _naive_train(counts, config)


def test_deterministic_across_order_and_workers(books):
    book_counts = count_words(books[:2], make_pretokenizer(True))
    config = WordPieceConfig(vocab_size=2000)
    first = train_wordpiece(book_counts, config).tokens
    items = list(book_counts.items())
    random.Random(7).shuffle(items)
    # Three "workers" with overlapping words: split every count in two random parts.
    parts: list[list[tuple[str, int]]] = [[], [], []]
    rng = random.Random(11)
    for word, count in items:
        k = rng.randint(0, count)
        parts[rng.randrange(3)].append((word, k))
        parts[rng.randrange(3)].append((word, count - k))
    summed = {w: c for w, c in merge_counts(parts).items() if c}
    assert summed == dict(book_counts)
    assert train_wordpiece(summed, config).tokens == first
    assert train_wordpiece(dict(reversed(items)), config).tokens == first


def test_layout_size_and_alphabet_limit(book_counts):
    config = WordPieceConfig(vocab_size=2048, n_unused=3, limit_alphabet=40)
    res = train_wordpiece(book_counts, config)
    toks = res.tokens
    assert len(toks) == 2048 and len(set(toks)) == 2048
    assert toks[:8] == ["[PAD]", "[unused0]", "[unused1]", "[unused2]"] + [
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    ]
    singles = [t for t in toks[8:] if len(t) == 1]
    assert res.alphabet_size == len(singles) == 40
    # The 40 kept characters are the most frequent ones.
    freq = Counter()
    for w, c in book_counts.items():
        for ch in w:
            freq[ch] += c
    assert set(singles) == {
        ch for ch, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:40]
    }
    skipped = [w for w in book_counts if not set(w) <= set(singles)]
    assert res.skipped_words == len(skipped) > 0
    assert res.skipped_occurrences == sum(book_counts[w] for w in skipped)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abcdé9", min_size=1, max_size=8),
        st.integers(1, 30),
        min_size=1,
        max_size=40,
    )
)
def test_every_training_word_tokenizes_without_unk(counts):
    res = train_wordpiece(
        counts, WordPieceConfig(vocab_size=60, min_frequency=1, allow_smaller=True)
    )
    tok = build_tokenizer(res.tokens, lowercase=False, strip_accents=False)
    unk = tok.token_to_id("[UNK]")
    for word in counts:
        ids = tok.encode(word, add_special_tokens=False).ids
        assert unk not in ids
        assert tok.decode(ids) == word


def test_errors():
    with pytest.raises(UserError, match="empty"):
        train_wordpiece({}, WordPieceConfig())
    with pytest.raises(UserError, match="positive"):
        train_wordpiece({"a": 0}, WordPieceConfig())
    with pytest.raises(UserError, match="whitespace"):
        train_wordpiece({"a b": 2}, WordPieceConfig())
    with pytest.raises(UserError, match="alphabet need"):
        train_wordpiece({"abcdef": 3}, WordPieceConfig(vocab_size=8))


def test_corpus_too_small_says_the_size_reached(books):
    book_counts = count_words(books[:2], make_pretokenizer(True))
    config = WordPieceConfig(vocab_size=10**6, min_frequency=50)
    with pytest.raises(UserError, match=r"supports only (\d+) vocab entries") as info:
        train_wordpiece(book_counts, config)
    reached = int(info.value.args[0].split("only ")[1].split()[0])
    smaller = train_wordpiece(
        book_counts, WordPieceConfig(**{**config.__dict__, "allow_smaller": True})
    )
    assert len(smaller.tokens) == reached < 10**6
    assert smaller.last_merge_count >= 50
