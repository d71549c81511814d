"""SNLI (``--task snli``): the reader on the file as distributed (the first 100 lines of SNLI 1.0
dev are bundled, gzipped; the whole dev file is read by the test marked shared) and a run through
``bertprep finetune`` that holds its dev rows out of the one file given."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest
import torch

from bertprep.cli import main
from ground.errors import UserError
from pretrain import glue, nli
from tests.conftest import TESTDATA
from tests.pretrain.tiny_bert import export_tiny

SLICE = TESTDATA / "snli" / "snli_1.0_dev-first-100.jsonl.gz"
LABELS = ["entailment", "neutral", "contradiction"]


@pytest.fixture(autouse=True, scope="module")
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, corpus_dir):
    return export_tiny(tmp_path_factory.mktemp("model"), corpus_dir)


def test_reader_on_the_bundled_slice(tmp_path):
    res = nli.read_snli(SLICE)
    # 100 lines: line 67 is labelled "-" (annotators 2 entailment, 2 neutral, 1 contradiction).
    assert len(res.examples) == 99 and res.skipped == {nli.NO_GOLD: 1}
    assert Counter(e.label for e in res.examples) == {
        "contradiction": 36,
        "entailment": 32,
        "neutral": 31,
    }
    first = res.examples[0]
    assert first.text_a == "Two women are embracing while holding to go packages."
    assert first.text_b == (
        "The sisters are hugging goodbye while holding to go packages after just eating lunch."
    )
    assert first.label == "neutral"
    # The same lines uncompressed (.jsonl, as the SNLI zip holds them) read the same.
    plain = tmp_path / "snli_1.0_dev.jsonl"
    plain.write_bytes(gzip.decompress(SLICE.read_bytes()))
    assert nli.read_snli(plain) == res
    task = glue.get_task("snli")
    assert task.labels == tuple(LABELS) and task.pair and not task.glue_dir
    assert task.reported == ("accuracy", "macro_f1")


@pytest.mark.shared
def test_reader_on_the_whole_dev_file(shared_dir):
    path = shared_dir / "snli" / "snli_1.0_dev.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    assert len(lines) == 10000
    # The bundled slice is the first 100 lines of this file.
    assert gzip.decompress(SLICE.read_bytes()) == b"".join(lines[:100])
    res = nli.read_snli(path)
    assert len(res.examples) == 9842 and res.skipped == {nli.NO_GOLD: 158}
    assert Counter(e.label for e in res.examples) == {
        "entailment": 3329,
        "neutral": 3235,
        "contradiction": 3278,
    }
    assert all(e.text_a and e.text_b for e in res.examples)


def test_wrong_files_are_user_errors(tmp_path, corpus_dir):
    cases = {
        "sst2.tsv": (b"sentence\tlabel\nfine\t1\n", r"sst2.tsv:1: not SNLI JSONL \(not valid"),
        "other.jsonl": (b'{"sentence": "a", "label": 1}\n', "no sentence1, sentence2, gold_label"),
        "list.jsonl": (b"[1, 2]\n", "expected a JSON object per line"),
        "dashes.jsonl": (
            b'{"sentence1": "a", "sentence2": "b", "gold_label": "-"}\n',
            r"no SNLI examples \(skipped: \{\"gold_label '-'",
        ),
        "label.jsonl": (
            b'{"sentence1": "a", "sentence2": "b", "gold_label": "entailment"}\n'
            b'{"sentence1": "a", "sentence2": "b", "gold_label": "maybe"}\n',
            "label.jsonl:2: gold_label 'maybe' is not one of entailment, neutral, contra",
        ),
        "cut.jsonl.gz": (SLICE.read_bytes()[:3000], "damaged gzip data"),
        "latin1.jsonl": ('{"sentence1": "caf\xe9"}\n'.encode("latin-1"), "not UTF-8"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match=message):
            nli.read_snli(tmp_path / name)
    with pytest.raises(UserError, match="no such file"):
        nli.read_snli(tmp_path / "missing.jsonl")
    # A row missing a field after the first is skipped and counted, not fatal.
    ok = b'{"sentence1": "a", "sentence2": "b", "gold_label": "neutral"}\n'
    (tmp_path / "holes.jsonl").write_bytes(ok + b'{"sentence1": "a"}\n' + ok)
    res = nli.read_snli(tmp_path / "holes.jsonl")
    assert len(res.examples) == 2 and res.skipped == {"missing field": 1}


def test_snli_run_holds_dev_out_of_the_file_and_reports_skips(tmp_path, model_dir, capsys):
    out = tmp_path / "out"
    argv = ["finetune", "--model", str(model_dir), "--task", "snli", "--train", str(SLICE),
            "--output", str(out), "--lr", "1e-3", "--epochs", "1", "--batch-size", "16",
            "--max-seq-length", "64"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == "snli" and res["labels"] == LABELS and res["metric"] == "accuracy"
    assert res["reported"] == ["accuracy", "macro_f1"]
    # 99 examples: 20 held out as dev (--eval-fraction 0.2), then 8 of the other 79 as selection.
    d = res["data"]
    assert d["rows"] == {"train": 71, "select": 8, "dev": 20} and d["dev_held_out_of_train"]
    assert d["skipped"] == {"train": {nli.NO_GOLD: 1}}
    skipped = {nli.NO_GOLD: 1}
    assert f"finetune: skipped 1 train rows: {skipped}" in printed
    assert "no --eval: the reported dev rows are 20 rows held out of --train" in printed
    (run,) = res["runs"]
    assert set(run["epochs"][0]["dev"]) == {"accuracy", "mcc", "macro_f1", "loss"}  # 3 classes
    summary = (out / "summary.md").read_text()
    assert "dev accuracy (mean ± std) | dev macro-F1 (mean ± std)" in summary
    assert "held out of the training file, which also gave dev" in summary
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["id2label"] == {"0": "entailment", "1": "neutral", "2": "contradiction"}
    assert config["num_labels"] == 3
    saved = json.loads((out / "summary.json").read_text())
    assert saved["skipped"] == {"train": {nli.NO_GOLD: 1}} and saved["num_eval"] == 20


def test_snli_mistakes_are_one_line_errors(tmp_path, model_dir, capsys):
    base = ["finetune", "--model", str(model_dir), "--output", str(tmp_path / "o")]
    snli_dir = tmp_path / "snli"
    snli_dir.mkdir()
    cases = [
        (["--task", "snli", "--glue-dir", str(tmp_path)], "not a GLUE directory: pass --train"),
        (["--glue-dir", str(snli_dir)], "not a GLUE directory"),  # task taken from the name
        (["--task", "snli", "--train", str(SLICE), "--metric", "f1"], "needs two labels"),
        (["--task", "snli", "--train", str(TESTDATA / "glue" / "CoLA" / "dev.tsv")],
         "not SNLI JSONL"),
    ]  # fmt: skip
    for extra, message in cases:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
