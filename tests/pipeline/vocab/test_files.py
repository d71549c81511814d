"""vocab.txt / tokenizer.json / counts files, --vocab reuse, and agreement with transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import BertTokenizerFast
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

from ground.errors import UserError
from pipeline.vocab.files import (
    build_tokenizer,
    counts_tsv_bytes,
    load_vocab,
    read_counts,
    tokenizer_from_vocab,
    vocab_report,
    write_vocab_dir,
)
from pipeline.vocab.word_counts import count_words, make_pretokenizer
from pipeline.vocab.wordpiece import WordPieceConfig, train_wordpiece


def read_book(path: Path) -> str:
    """Gutenberg naming: N-8.txt is ISO-8859-1, the others UTF-8 (maybe with a BOM)."""
    raw = path.read_bytes()
    return raw.decode("latin-1") if path.name.endswith("-8.txt") else raw.decode("utf-8-sig")


@pytest.fixture(scope="module")
def bundled_texts(corpus_dir) -> list[str]:
    """Every bundled book, split in paragraphs, every SST-2 dev sentence, and the paragraphs
    of every bundled Wikipedia sample (raw wikitext: markup is text to a tokenizer too)."""
    from tests.pipeline.segment.test_segment import wiki_paragraphs

    texts = [p for _, p in wiki_paragraphs(corpus_dir)]
    for path in sorted((corpus_dir / "books").glob("*.txt")):
        texts += [p for p in read_book(path).replace("\r\n", "\n").split("\n\n") if p.strip()]
    rows = (corpus_dir / "finetune" / "glue-sst2-dev.tsv").read_text(encoding="utf-8").splitlines()
    texts += [row.split("\t")[0] for row in rows[1:]]
    assert len(texts) > 6000
    return texts


@pytest.mark.parametrize("name,lowercase", [("uncased", True), ("cased", False)])
def test_google_vocab_ids_equal_transformers(corpus_dir, tmp_path, bundled_texts, name, lowercase):
    vocab = corpus_dir / "vocab" / f"bert-base-{name}-vocab.txt"
    ours = tokenizer_from_vocab(vocab, lowercase=lowercase)
    # transformers' usual way in: a model directory holding vocab.txt
    shutil.copy(vocab, tmp_path / "vocab.txt")
    ref = BertTokenizerFast.from_pretrained(str(tmp_path), do_lower_case=lowercase)
    assert ref.vocab_size == ours.get_vocab_size() == len(load_vocab(vocab).tokens)
    got = [e.ids for e in ours.encode_batch(bundled_texts)]
    assert got == ref(bundled_texts)["input_ids"]
    pair = ours.encode("Who's there?", "Nobody, sir.")
    ref_pair = ref("Who's there?", "Nobody, sir.")
    assert pair.ids == ref_pair["input_ids"] and pair.type_ids == ref_pair["token_type_ids"]


def test_google_uncased_vocab_equals_python_reference(corpus_dir, bundled_texts):
    # transformers' pure-Python BERT tokenizer: an implementation independent of `tokenizers`.
    vocab = corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"
    ours = tokenizer_from_vocab(vocab, lowercase=True)
    ref = BertTokenizerLegacy(str(vocab), do_lower_case=True)
    sst = bundled_texts[-872:]
    assert [e.ids for e in ours.encode_batch(sst)] == [ref(t)["input_ids"] for t in sst]
    # The BERT README example.
    assert ours.encode("John Johanson's house").ids == [
        101,
        2198,
        13093,
        3385,
        1005,
        1055,
        2160,
        102,
    ]


@pytest.fixture(scope="module")
def trained(corpus_dir):
    books = [read_book(p) for p in sorted((corpus_dir / "books").glob("*.txt"))]
    pretok = make_pretokenizer(True)
    counts = count_words(books[:3], pretok)
    tokens = train_wordpiece(counts, WordPieceConfig(vocab_size=4000, n_unused=4)).tokens
    return tokens, counts, books[3], pretok


def test_written_files_load_everywhere_and_are_byte_identical(trained, tmp_path, bundled_texts):
    tokens, counts, heldout, pretok = trained
    for d in ("a", "b"):
        report = vocab_report(build_tokenizer(tokens, True), counts, [heldout[:100000]], pretok)
        write_vocab_dir(tmp_path / d, tokens, True, None, counts, report)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["counts.tsv", "report.json", "tokenizer.json", "vocab.txt"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    d = tmp_path / "a"
    assert (d / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1] == tokens
    from_file = Tokenizer.from_file(str(d / "tokenizer.json"))
    hf_json = BertTokenizerFast(tokenizer_file=str(d / "tokenizer.json"))
    hf_txt = BertTokenizerFast(vocab=str(d / "vocab.txt"), do_lower_case=True)
    sample = bundled_texts[::20]
    ids = [e.ids for e in from_file.encode_batch(sample)]
    assert ids == hf_json(sample)["input_ids"] == hf_txt(sample)["input_ids"]
    assert all(i[0] == tokens.index("[CLS]") and i[-1] == tokens.index("[SEP]") for i in ids)
    assert hf_json.pad_token_id == 0 and hf_json.mask_token_id == tokens.index("[MASK]")
    assert read_counts(d / "counts.tsv") == dict(counts)
    loaded = load_vocab(d / "tokenizer.json")
    assert loaded.tokens == tokens and loaded.lowercase is True


def test_counts_file_order_and_round_trip():
    counts = {"b": 3, "a": 3, "ζ": 10, "c": 1}
    data = counts_tsv_bytes(counts)
    assert data.decode().splitlines() == ["ζ\t10", "a\t3", "b\t3", "c\t1"]
    with pytest.raises(ValueError):
        counts_tsv_bytes({"a\tb": 1})


def test_report_figures_are_what_they_say(trained):
    tokens, counts, heldout, pretok = trained
    tok = build_tokenizer(tokens, True)
    paragraphs = heldout.split("\r\n\r\n")[:300]
    report = vocab_report(tok, counts, paragraphs, pretok)
    words = sum(len(pretok(p)) for p in paragraphs)
    pieces = sum(len(tok.model.tokenize(w)) for p in paragraphs for w in pretok(p))
    assert report["heldout_words"] == words and report["heldout_tokens"] == pieces
    assert report["tokens_per_word"] == round(pieces / words, 6) > 1.0
    in_vocab = set(tokens)
    cov = sum(c for w, c in counts.items() if w in in_vocab) / sum(counts.values())
    assert report["train_word_coverage"] == round(cov, 6) and 0.5 < cov < 1
    assert report["vocab_size"] == 4000
    # A vocab without "q" and "##q": every word with a q becomes one [UNK].
    no_q = [t for t in tokens if "q" not in t]
    r2 = vocab_report(build_tokenizer(no_q, True), counts, paragraphs, pretok)
    model = build_tokenizer(no_q, True).model
    unk_words = [w for p in paragraphs for w in pretok(p) if model.tokenize(w)[0].value == "[UNK]"]
    q_words = [w for p in paragraphs for w in pretok(p) if "q" in w]
    assert q_words and set(q_words) <= set(unk_words)
    assert r2["unk_rate"] == round(len(unk_words) / words, 6)
    assert r2["heldout_tokens"] == pieces - sum(len(tok.model.tokenize(w)) - 1 for w in unk_words)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_load_vocab_errors(tmp_path, corpus_dir):
    good = (corpus_dir / "vocab" / "bert-base-uncased-vocab.txt").read_text(encoding="utf-8")
    lines = good.split("\n")[:-1]
    cases = {
        "missing.txt": (None, "does not exist"),
        "empty.txt": (b"", "empty"),
        "latin1.txt": ("[PAD]\n[UNK]\ncaf\xe9\n".encode("latin-1"), "not UTF-8"),
        "dup.txt": (("\n".join(lines + ["the"]) + "\n").encode(), "appears twice"),
        "nomask.txt": (("\n".join(x for x in lines if x != "[MASK]") + "\n").encode(), "MASK"),
        "pad.txt": (("\n".join(lines[1:] + ["[PAD]"]) + "\n").encode(), "id 0"),
        "blank.txt": (("\n".join(lines[:50] + [""] + lines[50:]) + "\n").encode(), "empty"),
        "bad.json": (b'{"model": {"type": "WordPiece", "vocab": [1, 2]', "not a tokenizer.json"),
        "bpe.json": (b'{"model": {"type": "BPE", "vocab": {}}}', "expected WordPiece"),
        "gap.json": (b'{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "a": 2}}}', "gaps"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name if data is None else _write(tmp_path / name, data)
        with pytest.raises(UserError, match=message):
            load_vocab(path)
    crlf = _write(tmp_path / "crlf.txt", ("\r\n".join(lines)).encode())
    assert load_vocab(crlf).tokens == lines


def test_tokenizer_json_case_conflict(trained, tmp_path):
    tokens, counts, _, _ = trained
    write_vocab_dir(tmp_path, tokens, True, None)
    with pytest.raises(UserError, match="lowercase"):
        tokenizer_from_vocab(tmp_path / "tokenizer.json", lowercase=False)
    tok = tokenizer_from_vocab(tmp_path / "tokenizer.json", lowercase=True)
    assert json.loads(tok.to_str())["model"]["vocab"]["[PAD]"] == 0
