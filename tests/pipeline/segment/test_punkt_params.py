"""Punkt parameters: shipped English model, punkt_tab reader/writer, training, all vs NLTK."""

from __future__ import annotations

import pytest

from ground.errors import UserError
from pipeline.segment.punkt_params import (
    FILES,
    PunktParams,
    encode_params,
    load_english,
    read_params,
    train_params,
    training_sample,
    write_params,
)
from pipeline.segment.segment import PunktSplitter
from tests.pipeline.segment.test_segment import (
    SHIPPED,
    bundled_paragraphs,
    nltk_load_params,
    nltk_reference_tokenizer,
)


def _as_ours(nltk_params) -> PunktParams:
    return PunktParams(
        abbrev_types=frozenset(nltk_params.abbrev_types),
        collocations=frozenset(nltk_params.collocations),
        sent_starters=frozenset(nltk_params.sent_starters),
        ortho_context={k: v for k, v in nltk_params.ortho_context.items() if v},
    )


@pytest.fixture(scope="module")
def english() -> PunktParams:
    return load_english()


@pytest.mark.shared
def test_shipped_files_are_the_shared_nltk_data(shared_dir):
    shared = shared_dir / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
    for name in FILES:
        assert (SHIPPED / name).read_bytes() == (shared / name).read_bytes(), name


def test_load_english_equals_nltks_loader(english):
    # SOURCES.md counts: 156 abbreviations, 37 collocations, 39 starters, 20,366 types.
    assert english.counts() == {
        "abbrev_types": 156,
        "collocations": 37,
        "sent_starters": 39,
        "ortho_context": 20366,
    }
    assert english == _as_ours(nltk_load_params(SHIPPED))
    assert "mr" in english.abbrev_types and ("##number##", "international") in english.collocations


def test_writer_round_trips_through_nltk(english, tmp_path):
    out = write_params(english, tmp_path / "english")
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temp files left
    assert _as_ours(nltk_load_params(out)) == english
    assert read_params(out) == english
    # NLTK's tokenizer on the rewritten files splits a book exactly as on the originals.
    paras = bundled_paragraphs("219.txt")
    original, rewritten = nltk_reference_tokenizer(SHIPPED), nltk_reference_tokenizer(out)
    assert [rewritten.tokenize(p) for p in paras] == [original.tokenize(p) for p in paras]


def test_writer_format_is_deterministic(english, tmp_path):
    a = write_params(english, tmp_path / "a")
    b = write_params(english, tmp_path / "b")
    for name in FILES:
        text = (a / name).read_bytes()
        assert text == (b / name).read_bytes()
        assert not text.endswith(b"\n") and b"\r" not in text  # NLTK's TabEncoder layout
        lines = text.decode("utf-8").split("\n")
        assert lines == sorted(lines)
    assert encode_params(english)["collocations.tab"].count("\t") == 37


def test_read_params_errors(tmp_path, english):
    with pytest.raises(UserError, match="does not exist"):
        read_params(tmp_path / "nope")
    bad = write_params(english, tmp_path / "bad")
    (bad / "sent_starters.txt").unlink()
    with pytest.raises(UserError, match="no sent_starters.txt"):
        read_params(bad)
    bad = write_params(english, tmp_path / "bad2")
    (bad / "collocations.tab").write_text("a\tb\nonly-one-field", encoding="utf-8")
    with pytest.raises(UserError, match="collocations.tab line 2"):
        read_params(bad)
    bad = write_params(english, tmp_path / "bad3")
    (bad / "ortho_context.tab").write_text("word\tmany", encoding="utf-8")
    with pytest.raises(UserError, match="ortho_context.tab line 1"):
        read_params(bad)
    bad = write_params(english, tmp_path / "bad4")
    (bad / "abbrev_types.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="not UTF-8"):
        read_params(bad)


def test_training_sample_is_a_bounded_prefix():
    texts = ["alpha beta gamma", "  ", "delta epsilon zeta eta", "theta"]
    assert training_sample(texts, 1000) == "alpha beta gamma\n\ndelta epsilon zeta eta\n\ntheta"
    sample = training_sample(texts, 30)
    assert len(sample) <= 30 and sample == "alpha beta gamma\n\ndelta"
    assert training_sample(iter(texts), 30) == sample
    assert training_sample(["x" * 50], 10) == "x" * 10
    with pytest.raises(UserError):
        training_sample(texts, 0)


def test_train_params_on_a_book(tmp_path):
    # Pride and Prejudice: "Mr." and "Mrs." are its most frequent abbreviations.
    paras = bundled_paragraphs("1342.txt")
    learned = train_params(paras, max_chars=250_000)
    assert {"mr", "mrs"} <= learned.abbrev_types
    assert learned == train_params(paras, max_chars=250_000)  # deterministic
    assert learned != train_params(paras, max_chars=100_000)  # the bound is applied
    out = write_params(learned, tmp_path / "p")
    first = (out / "abbrev_types.txt").read_bytes()
    assert write_params(learned, tmp_path / "q").joinpath("abbrev_types.txt").read_bytes() == first
    # Our splitter on the learned parameters is NLTK on the same files.
    reference = nltk_reference_tokenizer(out)
    ours = PunktSplitter(read_params(out))
    assert [ours(p) for p in paras] == [reference.tokenize(p) for p in paras]


def test_train_params_empty_corpus():
    with pytest.raises(UserError, match="empty"):
        train_params(["", "   "])
