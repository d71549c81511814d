"""GLUE readers on the files as distributed (../shared/corpora/glue; the dev files and the
first rows of MRPC train are bundled, the whole train files are marked shared) and the numpy
metrics on hand-checked examples."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ground.errors import UserError
from pretrain import finetune_metrics as fm
from pretrain import glue
from tests.conftest import CORPUS, SHARED, TESTDATA

# (task, directory, split) -> (rows, rows labelled "1"); counts from SOURCES.md, re-counted.
COUNTS = {
    ("sst2", "SST-2", "train"): (67349, 37569),
    ("sst2", "SST-2", "dev"): (872, 444),
    ("cola", "CoLA", "train"): (8551, 6023),
    ("cola", "CoLA", "dev"): (1043, 721),
    ("mrpc", "MRPC", "train"): (3668, 2474),
    ("mrpc", "MRPC", "dev"): (408, 279),
}


# The dev files as bundled (SST-2 dev is corpus/finetune/glue-sst2-dev.tsv), byte-identical.
DEV = {
    "SST-2": CORPUS / "finetune" / "glue-sst2-dev.tsv",
    "CoLA": TESTDATA / "glue" / "CoLA" / "dev.tsv",
    "MRPC": TESTDATA / "glue" / "MRPC" / "dev.tsv",
}


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(k, id=f"{k[0]}-{k[2]}", marks=[pytest.mark.shared] if k[2] == "train" else [])
        for k in sorted(COUNTS)
    ],
)
def test_readers_parse_the_real_files(key):
    name, dirname, split = key
    task = glue.get_task(name)
    res = task.reader(DEV[dirname] if split == "dev" else SHARED / "glue" / dirname / "train.tsv")
    labels = Counter(e.label for e in res.examples)
    assert (len(res.examples), labels["1"]) == COUNTS[key]
    assert set(labels) == {"0", "1"} and res.skipped == {}
    assert all((e.text_b is not None) == task.pair for e in res.examples)
    assert not any("\t" in e.text_a or e.text_a != e.text_a.strip() for e in res.examples)


def test_reader_details():
    mrpc = glue.read_mrpc(TESTDATA / "glue" / "MRPC" / "train-first-20.tsv").examples[0]
    # Bare quotes survive (a quoting reader would join fields), the BOM is not in the header.
    assert mrpc.text_a.startswith('Amrozi accused his brother , whom he called " the witness "')
    assert mrpc.text_b.startswith('Referring to him as only " the witness "') and mrpc.label == "1"
    cola = glue.read_cola(DEV["CoLA"]).examples  # last line has no newline
    assert cola[0].text_a == "The sailors rode the breeze clear of the rocks."
    assert cola[-1].text_a and cola[-1].label in ("0", "1")
    sst = glue.read_sst2(DEV["SST-2"]).examples[0]
    assert sst.text_a == "it 's a charming and often affecting journey ." and sst.label == "1"


def test_wrong_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"header \['gj04'.*expected \['sentence', 'label'\]"):
        glue.read_sst2(DEV["CoLA"])
    with pytest.raises(UserError, match="no CoLA examples .*wrong number of fields"):
        glue.read_cola(DEV["SST-2"])
    with pytest.raises(UserError, match="expected \\['Quality'"):
        glue.read_mrpc(DEV["SST-2"])
    bad = tmp_path / "train.tsv"
    bad.write_text("sentence\tlabel\nfine\t1\nodd\tpositive\n")
    with pytest.raises(UserError, match=r"train.tsv:3: label 'positive' is not 0 or 1"):
        glue.read_sst2(bad)
    with pytest.raises(UserError, match="no dev.tsv"):
        glue.task_files(tmp_path)
    with pytest.raises(UserError, match="unknown; choose one of sst2, cola, mrpc"):
        glue.get_task("qqp")
    assert glue.get_task("SST-2").metric == "accuracy"
    assert glue.get_task("cola").reported == ("mcc", "accuracy")
    assert glue.get_task("mrpc").reported == ("f1", "accuracy") and glue.TASKS["mrpc"].pair


def test_metrics_on_hand_checked_examples():
    pred, gold = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 0, 1])
    # TP 2, FP 1, TN 2, FN 0: MCC = (2*2 - 1*0) / sqrt(3*2*3*2) = 4/6; F1 = 4 / (4 + 1) = 0.8.
    assert fm.matthews_corrcoef(pred, gold, 2) == pytest.approx(2 / 3)
    assert fm.f1_positive(pred, gold) == pytest.approx(0.8)
    assert fm.accuracy(pred, gold) == pytest.approx(0.8)
    assert fm.matthews_corrcoef(gold, gold, 2) == pytest.approx(1.0)
    assert fm.matthews_corrcoef(1 - gold, gold, 2) == pytest.approx(-1.0)
    # Degenerate: every prediction one class -> MCC 0 (not NaN); no positive predicted -> F1 0.
    for const in (0, 1):
        assert fm.matthews_corrcoef(np.full(5, const), gold, 2) == 0.0
    assert fm.f1_positive(np.zeros(5, int), gold) == 0.0
    assert fm.f1_positive(np.ones(5, int), gold) == pytest.approx(2 * 2 / (2 * 2 + 3))
    # Three classes, by hand: C = [[2,0,0],[1,1,0],[0,1,1]] (rows gold): c=4, s=6,
    # t=(2,2,2), p=(3,2,1), t.p = 12: (4*6 - 12) / sqrt((36 - 14) * (36 - 12)) = 12 / sqrt(528).
    g3, p3 = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 1, 1, 2])
    assert fm.matthews_corrcoef(p3, g3, 3) == pytest.approx(12 / np.sqrt(528))
    # Class 0 F1 = 2/3, class 1 F1 = 4/5.
    m = fm.classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert m["accuracy"] == 0.75 and m["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    logits = np.log(np.array([[0.4, 0.6], [0.2, 0.8]]))
    lm = fm.logit_metrics(logits, np.array([1, 1]))
    assert lm["loss"] == pytest.approx(-(np.log(0.6) + np.log(0.8)) / 2)
    assert lm["accuracy"] == 1.0 and set(lm) == {"accuracy", "mcc", "macro_f1", "f1", "loss"}
    base = fm.constant_metrics(1, gold, 2)  # majority "1" on 2 of 5
    assert base["accuracy"] == pytest.approx(0.4) and base["mcc"] == 0.0
    assert base["f1"] == pytest.approx(2 * 2 / (2 * 2 + 3))
    s = fm.mean_std([1.0, 2.0, 4.0])
    assert s["mean"] == pytest.approx(7 / 3) and s["std"] == pytest.approx(
        np.std([1, 2, 4], ddof=1)
    )
    assert (s["min"], s["max"], s["n"]) == (1.0, 4.0, 3) and fm.mean_std([3.0])["std"] is None
