"""FastWordPiece gives exactly the ids of ``tokenizers`` on real text and on adversarial text."""

from __future__ import annotations

import csv

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from ground.errors import UserError
from pipeline.instances import tokenize as fast_tokenize
from pipeline.instances.tokenize import FastWordPiece

VOCABS = [("bert-base-uncased-vocab.txt", True), ("bert-base-cased-vocab.txt", False)]


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@pytest.fixture(scope="module")
def bundled_lines(corpus_dir) -> list[str]:
    """Every non-blank line of the bundled books and one wiki dump, plus SST-2 dev sentences."""
    lines = []
    for path in sorted((corpus_dir / "books").glob("*.txt")):
        lines += [ln for ln in _decode(path.read_bytes()).splitlines() if ln.strip()]
    with open(corpus_dir / "finetune" / "glue-sst2-dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 872
    # Vietnamese Wikipedia markup: diacritics, combining marks, CJK and symbols on every line.
    wiki = corpus_dir / "wikipedia" / "wikiextractor-pr322_viwiki-test-truncated.xml"
    lines += [ln for ln in wiki.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return lines + [r["sentence"] for r in rows]


@pytest.fixture(scope="module", params=VOCABS, ids=["uncased", "cased"])
def fast(request, corpus_dir) -> FastWordPiece:
    name, lowercase = request.param
    return FastWordPiece.from_vocab_file(str(corpus_dir / "vocab" / name), lowercase=lowercase)


def _reference(fw: FastWordPiece, sentences: list[str]) -> list[list[int]]:
    return [fw.tokenizer.encode(s, add_special_tokens=False).ids for s in sentences]


def test_identical_ids_on_bundled_text(fast, bundled_lines):
    assert fast.fast
    assert len(bundled_lines) > 10_000
    ours = fast.encode_batch(bundled_lines)
    ref = _reference(fast, bundled_lines)
    bad = [i for i in range(len(ref)) if ours[i] != ref[i]]
    assert not bad, [(bundled_lines[i], ours[i], ref[i]) for i in bad[:3]]
    # Non-ASCII text is part of what was checked, not skipped.
    assert sum(not s.isascii() for s in bundled_lines) > 1000


def test_encode_document_matches_batch(fast, bundled_lines):
    sents = bundled_lines[:3000] + [""] + ADVERSARIAL + bundled_lines[3000:3100] + ADVERSARIAL
    tokens, offsets = fast.encode_document(sents)
    assert tokens.dtype.name == "int32" and offsets.dtype.name == "int64"
    assert len(offsets) == len(sents) + 1 and offsets[0] == 0 and offsets[-1] == len(tokens)
    ref = _reference(fast, sents)
    assert [tokens[offsets[i] : offsets[i + 1]].tolist() for i in range(len(sents))] == ref
    assert not any(k.startswith("\x00") for k in fast._cache)  # one-off sentences not kept
    empty_tokens, empty_offsets = fast.encode_document([])
    assert empty_tokens.size == 0 and empty_offsets.tolist() == [0]


ADVERSARIAL = [
    "Hello [MASK] world [UNK] and [CLS][SEP] [PAD]",
    "[mask] is not special in lower case",
    "tab\there\nnew\rline\x0bvt\x0cff\x00nul\x7fdel\x1fus",
    "line\u2028sep\u2029para\u00a0nbsp\u3000ideographic\u200bzw",
    "Çà et là — “quotes” ‘single’ naïve café Ångström ﬁ ligature",
    "中文字符和日本語のテキスト 한국어 mixed中文text",
    "combining: e\u0301 a\u0300\u0323 o\u0308\u0304 q\u0307",
    "Ελληνικά ΣΊΣΥΦΟΣ τελικό ς, İstanbul ß ẞ",
    "emoji 🙂👍🏽 and symbols £5 €3 ¥ © ® ™ ° ± × ÷ § ¶",
    "a" * 150 + " " + "b" * 99 + " supercalifragilisticexpialidocious",
    "under_score hy-phen $dollar ^caret `tick ~tilde |pipe",
    "",
    "   ",
]


def test_identical_ids_on_adversarial_text(fast):
    assert fast.encode_batch(ADVERSARIAL) == _reference(fast, ADVERSARIAL)


_ALPHABET = st.sampled_from(
    list("aZ09 .,;'\"-_[]#$\t\n")
    + ["[MASK]", "##", "é", "\u0301", "中", "\u2028", "\x00", "’", "ß"]
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(_ALPHABET, max_size=30).map("".join), min_size=1, max_size=5))
def test_identical_ids_on_random_text(fast, sentences):
    assert fast.encode_batch(sentences) == _reference(fast, sentences)


def test_every_ascii_pair(fast):
    """All 128 x 128 ASCII character pairs, between letters: normalisation and splitting."""
    sents = [f"x{chr(a)}{chr(b)}Y" for a in range(128) for b in range(0, 128, 7)]
    assert fast.encode_batch(sents) == _reference(fast, sents)


def test_cache_reset_keeps_ids(fast, bundled_lines, monkeypatch):
    monkeypatch.setattr(fast_tokenize, "MAX_CACHE_WORDS", 50)
    fw = FastWordPiece.from_tokenizer(fast.tokenizer)
    sents = bundled_lines[:400]
    batches = [sents[i : i + 4] for i in range(0, len(sents), 4)]
    biggest = 0
    for batch in batches:
        assert fw.encode_batch(batch) == _reference(fw, batch)
        biggest = max(biggest, sum(len(s) for s in batch))  # chars bound the distinct words
        assert len(fw._cache) <= 50 + biggest


def test_other_tokenizers_fall_back_to_encode_batch(corpus_dir):
    vocab = {}
    with open(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            vocab[line.rstrip("\n")] = i
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fw = FastWordPiece.from_tokenizer(tok)
    assert not fw.fast
    sents = ["Hello, world!", "Don't panic."]
    assert fw.encode_batch(sents) == [tok.encode(s, add_special_tokens=False).ids for s in sents]
    tokens, offsets = fw.encode_document(sents)
    assert tokens[offsets[0] : offsets[1]].tolist() == tok.encode(sents[0]).ids


def test_unreadable_vocab_is_a_user_error(tmp_path):
    with pytest.raises(UserError):
        FastWordPiece.from_vocab_file(str(tmp_path / "missing.txt"))


def test_truncating_tokenizer_json_is_not_truncated(fast):
    tok = Tokenizer.from_str(fast.tokenizer.to_str())
    tok.enable_truncation(max_length=3)
    fw = FastWordPiece.from_tokenizer(tok)
    sents = ["a sentence that is much longer than three tokens", "Hello [MASK] there, you two"]
    assert fw.encode_batch(sents) == _reference(fast, sents)
    assert [len(x) for x in fw.encode_batch(sents)] != [3, 3]
    assert tok.truncation is not None  # the caller's tokenizer is left as it was
