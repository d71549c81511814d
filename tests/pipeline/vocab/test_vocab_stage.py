"""`bertprep vocab` end to end: Beam word counts -> deterministic WordPiece -> RUN/vocab."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from bertprep.cli import main as bertprep
from pipeline.common import run_report
from pipeline.vocab.files import read_counts
from pipeline.vocab.transforms import is_heldout
from pipeline.vocab.word_counts import count_words, make_pretokenizer


@pytest.fixture(scope="module")
def run(corpus_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("vocab")
    books = run.parent / (run.name + "-books")
    books.mkdir()
    for name in ("1952-0.txt", "11-0.txt", "1661.txt"):
        shutil.copy(corpus_dir / "books" / name, books / name)
    assert bertprep(["extract", "--books", str(books), "--output", str(run)]) == 0
    return run


def _texts(run):
    rows = []
    for f in sorted((run / "docs").glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return [r["text"] for r in rows if not is_heldout(r["id"])]


def test_counts_and_vocab_deterministic_across_workers(run, tmp_path):
    outputs = []
    for extra in ([], ["--direct_num_workers", "2"]):
        assert (
            bertprep(["vocab", "--output", str(run), "--overwrite", "--vocab-size", "4000", *extra])
            == 0
        )
        outputs.append({p.name: p.read_bytes() for p in (run / "vocab").iterdir()})
    assert outputs[0] == outputs[1]
    vocab = outputs[0]["vocab.txt"].decode().splitlines()
    assert len(vocab) == 4000 and vocab[0] == "[PAD]" and "[MASK]" in vocab
    expected = count_words(_texts(run), make_pretokenizer(True))
    assert read_counts(run / "vocab" / "counts.tsv") == dict(expected)
    tok = Tokenizer.from_file(str(run / "vocab" / "tokenizer.json"))
    ids = tok.encode("Alice was beginning to get very tired.").ids
    assert ids[0] == vocab.index("[CLS]") and ids[-1] == vocab.index("[SEP]")
    rep = run_report.load_json(str(run / "report.json"))["vocab"]
    assert rep["vocab_size"] == 4000 and 1.0 <= rep["tokens_per_word"] < 2.0


def test_existing_vocab_reused_unchanged(run, corpus_dir):
    src = corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"
    assert bertprep(["vocab", "--output", str(run), "--overwrite", "--vocab", str(src)]) == 0
    assert (run / "vocab" / "vocab.txt").read_bytes() == src.read_bytes()


def test_extend_fills_unused_slots(run, corpus_dir):
    src = corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"
    assert (
        bertprep(
            [
                "vocab",
                "--output",
                str(run),
                "--overwrite",
                "--extend",
                str(src),
                "--add-terms",
                "20",
            ]
        )
        == 0
    )
    base = src.read_text().splitlines()
    new = (run / "vocab" / "vocab.txt").read_text().splitlines()
    changed = [i for i, (a, b) in enumerate(zip(base, new)) if a != b]
    assert len(new) == len(base) and len(changed) == 20
    assert all(base[i].startswith("[unused") for i in changed)
    added = run_report.load_json(str(run / "report.json"))["vocab"]["added_terms"]
    assert sorted(new[i] for i in changed) == sorted(added)


def test_too_small_corpus_and_bad_vocab_are_clear_errors(run, tmp_path, capsys):
    assert bertprep(["vocab", "--output", str(run), "--overwrite", "--vocab-size", "500000"]) == 2
    assert "supports only" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\nhello\n")
    assert bertprep(["vocab", "--output", str(run), "--overwrite", "--vocab", str(bad)]) == 2
    assert "bad.txt" in capsys.readouterr().err
    assert bertprep(["vocab", "--output", str(tmp_path / "nothing")]) == 2


def test_cased_accents_unused_and_alphabet_options(run):
    import json

    argv = ["vocab", "--output", str(run), "--overwrite", "--vocab-size", "3000", "--cased",
            "--strip-accents", "yes", "--unused", "3", "--min-frequency", "3",
            "--limit-alphabet", "60"]  # fmt: skip
    assert bertprep(argv) == 0
    vocab = (run / "vocab" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    head = ["[PAD]", "[unused0]", "[unused1]", "[unused2]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert vocab[:8] == head and len(vocab) == 3000
    normalizer = json.loads((run / "vocab" / "tokenizer.json").read_text())["normalizer"]
    assert normalizer["lowercase"] is False and normalizer["strip_accents"] is True
    tok = Tokenizer.from_file(str(run / "vocab" / "tokenizer.json"))
    assert tok.encode("Alice").ids != tok.encode("alice").ids  # cased
    assert tok.encode("Alíce café").ids == tok.encode("Alice cafe").ids  # accents stripped
    chars = {c for t in vocab[8:] for c in t.removeprefix("##")}
    assert len(chars) <= 60  # the 60 most frequent characters only
    sizes = {}
    for m in ("1", "3"):  # as large as the corpus allows: rare pairs are merged only at 1
        big = ["vocab", "--output", str(run), "--overwrite", "--vocab-size", "100000",
               "--allow-smaller-vocab", "--min-frequency", m]  # fmt: skip
        assert bertprep(big) == 0
        sizes[m] = len((run / "vocab" / "vocab.txt").read_text(encoding="utf-8").splitlines())
    assert 3000 < sizes["3"] < sizes["1"] < 100000


def test_empty_corpus_is_a_clear_error(tmp_path, capsys):
    # Extract stops a run that kept no document, naming why; the later stages refuse it too
    # (no _SUCCESS in RUN/docs), so no stage runs on nothing.
    corpus = tmp_path / "empty.jsonl"
    corpus.write_text('{"text": ""}\n')
    run = str(tmp_path / "run")
    assert bertprep(["extract", "--corpus", str(corpus), "--output", run]) == 2
    err = capsys.readouterr().err
    assert "no document kept from 1 input unit(s) (1 empty)" in err
    assert "Traceback" not in err
    assert run_report.load_json(f"{run}/report.json")["rejected"] == {"empty": 1}
    assert not (tmp_path / "run" / "docs" / "_SUCCESS").exists()
    for stage in ("segment", "vocab"):
        assert bertprep([stage, "--output", run]) == 2
        err = capsys.readouterr().err
        assert "extract" in err and "Traceback" not in err
