"""Word counting: the final tokenizer's own words, counted fast and exactly."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.vocab.files import build_tokenizer
from pipeline.vocab.word_counts import count_words, make_pretokenizer, merge_counts
from pipeline.vocab.wordpiece import special_layout


def read_book(path: Path) -> str:
    """Gutenberg naming: N-8.txt is ISO-8859-1, the others UTF-8 (maybe with a BOM)."""
    raw = path.read_bytes()
    return raw.decode("latin-1") if path.name.endswith("-8.txt") else raw.decode("utf-8-sig")


@pytest.fixture(scope="module")
def books(corpus_dir) -> list[str]:
    return [read_book(p) for p in sorted((corpus_dir / "books").glob("*.txt"))]


@pytest.fixture(scope="module")
def odd_texts(corpus_dir) -> list[str]:
    """Raw MediaWiki XML (markup, entities, Vietnamese diacritics) and SST-2: awkward text."""
    wiki = corpus_dir / "wikipedia"
    names = ["wiki2txt_enwiki-52-pages.xml", "wikiextractor-pr322_viwiki-test-truncated.xml"]
    texts = [(wiki / n).read_text(encoding="utf-8") for n in names]
    texts.append((corpus_dir / "finetune" / "glue-sst2-dev.tsv").read_text(encoding="utf-8"))
    return texts


@pytest.mark.parametrize("lowercase,strip", [(True, None), (False, True)])
def test_count_words_equals_whole_text_pretokenisation(books, odd_texts, lowercase, strip):
    pretok = make_pretokenizer(lowercase, strip)
    texts = [books[0]] + odd_texts  # Alice (the smallest book), wiki XML, SST-2
    direct = Counter()
    for text in texts:
        direct.update(pretok(text))
    assert count_words(texts, pretok) == direct


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from("aZé\u0301 \n\t\r\x00\x1c\u00a0\u3000中.,-'Σς\ufeff"), max_size=40
    )
)
def test_count_words_equals_pretokenisation_on_awkward_text(text):
    for pretok in (make_pretokenizer(True), make_pretokenizer(False, False)):
        assert count_words([text], pretok) == Counter(pretok(text))


def test_pretokenizer_words_are_the_tokenizer_words(books, odd_texts):
    # A vocab holding every counted word whole: the final tokenizer must then emit exactly
    # our words, one token each, so counting and tokenizing split text the same way.
    for lowercase in (True, False):
        pretok = make_pretokenizer(lowercase)
        texts = [books[0][:50000], odd_texts[0][:80000], odd_texts[1][:80000]]
        words = sorted(count_words(texts, pretok))
        tok = build_tokenizer(special_layout(0) + words, lowercase=lowercase)
        for text in texts:
            assert tok.encode(text, add_special_tokens=False).tokens == pretok(text)


def test_pretokenizer_pickles_as_its_options():
    pretok = make_pretokenizer(False, True)
    again = pickle.loads(pickle.dumps(pretok))
    assert (
        again("Café ÉTÉ, naïve.")
        == pretok("Café ÉTÉ, naïve.")
        == ["Cafe", "ETE", ",", "naive", "."]
    )


def test_merge_counts_sums_mappings_and_pairs():
    parts = [{"a": 2, "b": 1}, [("a", 3), ("c", 1)], Counter({"b": 4})]
    assert merge_counts(parts) == {"a": 5, "b": 5, "c": 1}
