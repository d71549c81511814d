"""`bertprep segment` end to end: docs in, paragraphs of sentences out, identical to NLTK Punkt."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from bertprep.cli import main as bertprep
from pipeline.common import run_report
from tests.conftest import ROOT
from tests.pipeline.segment.test_segment import nltk_reference_tokenizer

PUNKT_DIR = ROOT / "pipeline" / "segment" / "data" / "punkt_tab" / "english"


def _rows(path):
    rows = []
    for f in sorted(path.glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


@pytest.fixture(scope="module")
def run(corpus_dir, two_books, tmp_path_factory):
    run = tmp_path_factory.mktemp("seg")
    books = two_books
    wiki = str(corpus_dir / "wikipedia" / "mediawiki-dump_fowiki-dump.xml.bz2")
    assert (
        bertprep(["extract", "--books", str(books), "--wikipedia", wiki, "--output", str(run)]) == 0
    )
    assert bertprep(["segment", "--output", str(run)]) == 0
    return run


def test_sentences_match_nltk_punkt(run):
    reference = nltk_reference_tokenizer(PUNKT_DIR)  # NLTK's own loader and tokenizer
    docs = {d["id"]: d for d in _rows(run / "docs")}
    sents = _rows(run / "sentences")
    assert [s["id"] for s in sents] == [d for d in docs]  # same documents, same order
    for s in sents:
        paragraphs = docs[s["id"]]["text"].split("\n")
        assert s["paragraphs"] == [reference.tokenize(p) for p in paragraphs]


def test_segment_report_adds_up(run):
    rep = run_report.load_json(str(run / "report.json"))["segment"]
    sents = _rows(run / "sentences")
    assert rep["docs_in"] == rep["docs_out"] + rep["rejected_no_sentences"] == len(sents)
    assert rep["sentences"] == sum(len(p) for s in sents for p in s["paragraphs"])
    assert rep["language"] == "english"


def test_punkt_train_saves_and_reuses(run, tmp_path, capsys):
    assert (
        bertprep(
            [
                "segment",
                "--output",
                str(run),
                "--overwrite",
                "--punkt-train",
                "--language",
                "bookish",
                "--punkt-train-chars",
                "200000",
            ]
        )
        == 0
    )
    saved = run / "punkt_tab" / "bookish"
    first = {p.name: p.read_bytes() for p in saved.iterdir()}
    assert set(first) == {
        "abbrev_types.txt",
        "collocations.tab",
        "ortho_context.tab",
        "sent_starters.txt",
    }
    assert (
        bertprep(
            [
                "segment",
                "--output",
                str(run),
                "--overwrite",
                "--punkt-train",
                "--language",
                "bookish",
            ]
        )
        == 0
    )
    assert "reusing" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == first


def test_japanese_corpus_split_on_full_stops(tmp_path):
    corpus = tmp_path / "ja.jsonl"
    text = (
        "吾輩は猫である。名前はまだ無い。"
        "どこで生れたかとんと見当がつかぬ！何でも薄暗いところで泣いていた。"
    )
    corpus.write_text(json.dumps({"text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    assert (
        bertprep(["extract", "--corpus", str(corpus), "--min-words", "0", "--output", str(run)])
        == 0
    )
    assert bertprep(["segment", "--language", "ja", "--output", str(run)]) == 0
    (doc,) = _rows(run / "sentences")
    assert doc["paragraphs"] == [
        [
            "吾輩は猫である。",
            "名前はまだ無い。",
            "どこで生れたかとんと見当がつかぬ！",
            "何でも薄暗いところで泣いていた。",
        ]
    ]


def test_bad_language_and_missing_docs_are_clear_errors(run, tmp_path, capsys):
    assert bertprep(["segment", "--output", str(run), "--overwrite", "--language", "klingon"]) == 2
    assert "klingon" in capsys.readouterr().err
    assert bertprep(["segment", "--output", str(tmp_path / "empty")]) == 2
    assert "no documents" in capsys.readouterr().err
