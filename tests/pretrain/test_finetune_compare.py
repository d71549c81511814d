"""The comparison protocol: splits fixed by the split seed, paired arms, choices made on the
selection rows only, and a grid end to end through ``bertprep finetune`` on real GLUE rows.

A tiny (2-layer, 128-wide) model and a few hundred SST-2 rows keep every test to seconds; the
"pretrained" model is a freshly initialised BertForPreTraining, exported as the real one is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bertprep.cli import main
from pretrain import compare, export_dir, glue
from pretrain import finetune as ft
from pretrain import finetune_data as fd
from pretrain.checkpoint import make_state, save_checkpoint
from pretrain.config import preset
from pretrain.finetune_runs import Hyper, Splits, choose, fingerprint, paired, run_one
from pretrain.model import BertForPreTraining

CFG = preset("tiny", vocab_size=30522)


@pytest.fixture(autouse=True, scope="module")
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, corpus_dir) -> Path:
    """An exported tiny model with the bert-base-uncased tokenizer."""
    from tokenizers import BertWordPieceTokenizer

    d = tmp_path_factory.mktemp("model")
    vocab = corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"
    (d / "vocab").mkdir()
    BertWordPieceTokenizer(str(vocab), lowercase=True).save(str(d / "vocab" / "tokenizer.json"))
    shutil.copyfile(vocab, d / "vocab" / "vocab.txt")
    torch.manual_seed(1)
    state = make_state(step=1, phase=1, config={"model": CFG.to_dict()},
                       model=BertForPreTraining(CFG), with_rng=False)  # fmt: skip
    save_checkpoint(d / "ckpt-00000001.pt", state)
    return export_dir.export(d / "ckpt-00000001.pt", d / "export", vocab_dir=d / "vocab")


@pytest.fixture(scope="module")
def sst2_dir(tmp_path_factory, corpus_dir) -> Path:
    """The first 240 train and 100 dev rows of GLUE SST-2, in GLUE's layout."""
    d = tmp_path_factory.mktemp("SST-2")
    sources = {
        "train.tsv": corpus_dir / "testdata" / "glue" / "SST-2" / "train-first-240.tsv",
        "dev.tsv": corpus_dir / "finetune" / "glue-sst2-dev.tsv",
    }
    for name, n in (("train.tsv", 240), ("dev.tsv", 100)):
        lines = sources[name].read_text(encoding="utf-8").splitlines()
        (d / name).write_text("\n".join(lines[: n + 1]) + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def pretrained(model_dir):
    return ft.load_pretrained(model_dir)


@pytest.fixture(scope="module")
def tok(model_dir, pretrained):
    return fd.load_tokenizer(None, pretrained)[0]


def _plan(sst2_dir, out, **kw) -> compare.Plan:
    train, dev = glue.task_files(sst2_dir)
    source = compare.Source(train, dev, glue.TASKS["sst2"])
    base = dict(model="unused", vocab_dir=None, source=source, output=out, arms=("pretrained",),
                lrs=(1e-3,), seeds=(0,), metric="accuracy")  # fmt: skip
    return compare.Plan(**{**base, **kw})


def test_splits_depend_on_the_split_seed_only(sst2_dir, tok, tmp_path):
    def split(**kw):
        splits, info, _ = compare.prepare(_plan(sst2_dir, tmp_path, **kw), tok)
        return info["split_fingerprint"], info["rows"], splits

    a, rows, s = split(seeds=(0,))
    assert rows == {"train": 216, "select": 24, "dev": 100}
    assert split(seeds=(1, 2, 3), lrs=(1e-4, 1e-3), arms=("pretrained", "random"))[0] == a
    assert split(split_seed=1)[0] != a
    # Without an eval file, dev is held out of train as well, from the split seed alone too.
    train = sst2_dir / "train.tsv"
    held = dict(source=compare.Source(train, None, glue.TASKS["sst2"]), eval_fraction=0.25)
    b, rows_b, _ = split(**held)
    assert rows_b == {"train": 162, "select": 18, "dev": 60}
    assert split(**held, seeds=(5,))[0] == b and split(**held, split_seed=3)[0] != b
    # Selection rows are training-file rows that are not trained on.
    assert len(s.train) + len(s.select) == 240


def _splits(tok, sst2_dir, flip_dev=False) -> Splits:
    rows = glue.read_sst2(sst2_dir / "train.tsv").examples
    enc = fd.encode_examples(tok, rows, {"0": 0, "1": 1}, 64)
    train, select = enc.take(np.arange(160)), enc.take(np.arange(160, 240))
    dev = select
    if flip_dev:  # dev = the selection rows with every label flipped: its best epoch is the worst
        dev = fd.Encoded(select.input_ids, select.token_type_ids, select.attention_mask,
                         1 - select.labels)  # fmt: skip
    return Splits(train, select, dev, 2)


def test_arms_are_paired_at_a_seed(tok, sst2_dir, pretrained):
    a = ft.build_classifier(CFG, 2, pretrained.encoder_state, seed=3)
    rng_before = torch.get_rng_state()
    b = ft.build_classifier(CFG, 2, None, seed=3)
    assert torch.equal(torch.get_rng_state(), rng_before)  # building draws from no global RNG
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert not torch.equal(
        a.classifier.weight, ft.build_classifier(CFG, 2, None, 4).classifier.weight
    )
    emb = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(a.state_dict()[emb], pretrained.encoder_state[emb])
    assert not torch.equal(b.state_dict()[emb], a.state_dict()[emb])

    splits, hp = _splits(tok, sst2_dir), Hyper(epochs=2, batch_size=16)
    runs = {(arm, seed): run_one(splits, CFG, pretrained.encoder_state if arm == "pretrained" else
                                 None, arm, 1e-3, seed, hp, "accuracy", torch.device("cpu"))[0]
            for arm in ("pretrained", "random") for seed in (0, 1)}  # fmt: skip
    for seed in (0, 1):
        p, r = runs["pretrained", seed], runs["random", seed]
        assert (p["head_init"], p["batch_order"]) == (r["head_init"], r["batch_order"])
    assert runs["pretrained", 0]["head_init"] != runs["pretrained", 1]["head_init"]
    assert runs["pretrained", 0]["batch_order"] != runs["pretrained", 1]["batch_order"]
    # The same batches really were drawn: the order recomputed from the seed gives the digest.
    rng = np.random.default_rng(ft.derive_seed(0, "order"))
    order = [np.concatenate(ft.epoch_batches(splits.train, 16, rng, True)) for _ in range(2)]
    assert fingerprint(*order) == runs["random", 0]["batch_order"]


def test_reported_epoch_follows_selection_not_dev(tok, sst2_dir, pretrained):
    splits = _splits(tok, sst2_dir, flip_dev=True)
    rec, _ = run_one(splits, CFG, pretrained.encoder_state, "pretrained", 3e-3, 0,
                     Hyper(epochs=4, batch_size=16), "accuracy", torch.device("cpu"))  # fmt: skip
    sel = [e["select"]["accuracy"] for e in rec["epochs"]]
    dev = [e["dev"]["accuracy"] for e in rec["epochs"]]
    assert np.allclose(np.add(sel, dev), 1.0)
    assert len(set(sel)) > 1, sel  # otherwise the two choices could not differ
    assert rec["best_epoch"] == int(np.argmax(sel)) + 1 != int(np.argmax(dev)) + 1
    assert rec["dev"] == dev[rec["best_epoch"] - 1] < max(dev)


def _record(arm, lr, seed, sel, dev):
    epochs = [{"epoch": i + 1, "select": {"accuracy": s}, "dev": {"accuracy": d}}
              for i, (s, d) in enumerate(zip(sel, dev))]  # fmt: skip
    return {"arm": arm, "lr": lr, "seed": seed, "epochs": epochs}


def test_choices_read_selection_metrics_only():
    runs = [
        # lr 1e-4: best selection means (0.8, 0.7), but poor dev.
        _record("pretrained", 1e-4, 0, [0.6, 0.8, 0.7], [0.9, 0.5, 0.95]),
        _record("pretrained", 1e-4, 1, [0.7, 0.7, 0.6], [0.4, 0.99, 0.99]),
        # lr 1e-3: the best dev numbers everywhere, worse selection.
        _record("pretrained", 1e-3, 0, [0.7, 0.7, 0.7], [0.99, 0.99, 0.99]),
        _record("pretrained", 1e-3, 1, [0.6, 0.6, 0.7], [0.99, 0.99, 0.99]),
        _record("random", 1e-4, 0, [0.5, 0.6, 0.6], [0.6, 0.55, 0.9]),
        _record("random", 1e-4, 1, [0.5, 0.5, 0.5], [0.3, 0.9, 0.9]),
    ]
    c = choose(runs, "accuracy")
    assert c["pretrained"]["lr"] == 1e-4
    assert c["pretrained"]["by_lr"] == [{"lr": 1e-4, "select": pytest.approx(0.75)},
                                        {"lr": 1e-3, "select": pytest.approx(0.7)}]  # fmt: skip
    got = {s: (r["epoch"], r["dev"]) for s, r in c["pretrained"]["runs"].items()}
    assert got == {0: (2, 0.5), 1: (1, 0.4)}  # ties: the earliest epoch
    assert {s: r["epoch"] for s, r in c["random"]["runs"].items()} == {0: 2, 1: 1}
    p = paired(c)
    assert p["by_seed"] == {0: pytest.approx(0.5 - 0.55), 1: pytest.approx(0.4 - 0.3)}
    assert p["positive"] == 1 and p["n"] == 2
    assert paired({"pretrained": c["pretrained"]}) is None


def test_grid_end_to_end(tmp_path, model_dir, sst2_dir, capsys):
    out = tmp_path / "out"
    argv = ["finetune", "--model", str(model_dir), "--task", "sst2", "--glue-dir", str(sst2_dir),
            "--output", str(out), "--lr", "1e-4,3e-3", "--seeds", "2", "--compare-random",
            "--epochs", "2", "--batch-size", "16", "--max-seq-length", "64"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["task"] == "sst2" and res["metric"] == "accuracy"
    assert res["data"]["rows"] == {"train": 216, "select": 24, "dev": 100}
    runs = res["runs"]
    assert sorted((r["arm"], r["lr"], r["seed"]) for r in runs) == sorted(
        (a, lr, s) for a in ("pretrained", "random") for lr in (1e-4, 3e-3) for s in (0, 1)
    )
    for r in runs:
        assert [e["epoch"] for e in r["epochs"]] == [1, 2] and r["seconds"] > 0
        assert set(r["epochs"][0]["select"]) == set(r["epochs"][0]["dev"]) >= {"accuracy", "loss"}
        sel = [e["select"]["accuracy"] for e in r["epochs"]]
        assert r["best_epoch"] == int(np.argmax(sel)) + 1
        assert r["dev"] == r["epochs"][r["best_epoch"] - 1]["dev"]["accuracy"]
        twin = next(t for t in runs if t["arm"] != r["arm"] and (t["lr"], t["seed"]) ==
                    (r["lr"], r["seed"]))  # fmt: skip
        assert (twin["head_init"], twin["batch_order"]) == (r["head_init"], r["batch_order"])
    for c in res["choice"].values():
        assert c["lr"] == max(c["by_lr"], key=lambda g: g["select"])["lr"]
        assert set(c["runs"]) == {"0", "1"} and c["dev"]["n"] == 2
    diffs = res["paired"]["by_seed"]
    for s in ("0", "1"):
        a, b = res["choice"]["pretrained"]["runs"][s], res["choice"]["random"]["runs"][s]
        assert diffs[s] == pytest.approx(a["dev"] - b["dev"])
    dev_labels = [e.label for e in glue.read_sst2(sst2_dir / "dev.tsv").examples]
    label = res["majority"]["label"]  # of the 216 training rows, not of dev
    assert res["majority"]["dev"]["accuracy"] == dev_labels.count(label) / 100
    assert res["majority"]["dev"]["mcc"] == 0.0
    summary = (out / "summary.md").read_text()
    assert "| pretrained |" in summary and "Paired difference, pretrained - random" in summary
    assert summary in printed
    progress = [line for line in printed.splitlines() if " lr " in line and " seed " in line]
    assert len(progress) == 8 and all(line.endswith(" s") for line in progress)
    assert not (out / "best").exists() and not (out / "runs").exists()  # no --save-best


def test_reused_random_runs_are_the_runs_a_rerun_gives(tmp_path, model_dir, sst2_dir, capsys):
    def run(out, *extra):
        argv = ["finetune", "--model", str(model_dir), "--task", "sst2", "--glue-dir",
                str(sst2_dir), "--output", str(tmp_path / out), "--lr", "1e-3", "--seeds", "2",
                "--compare-random", "--epochs", "1", "--batch-size", "16",
                "--max-seq-length", "64", *extra]  # fmt: skip
        code = main(argv)
        return code, (tmp_path / out / "results.json")

    first = run("first")[1]
    again = json.loads(run("again")[1].read_text())  # trained afresh: determinism
    code, reused_file = run("reused", "--reuse-random", str(first))
    assert code == 0
    reused = json.loads(reused_file.read_text())
    keep = ("arm", "lr", "seed", "epochs", "best_epoch", "select", "dev", "head_init")

    def random_runs(res):
        return [{k: r[k] for k in keep} for r in res["runs"] if r["arm"] == "random"]

    assert random_runs(reused) == random_runs(again) != []
    assert all(r.get("reused") for r in reused["runs"] if r["arm"] == "random")
    assert not any(r.get("reused") for r in reused["runs"] if r["arm"] == "pretrained")
    assert reused["random_key"] == again["random_key"] and reused["paired"] == again["paired"]
    assert "(reused)" in capsys.readouterr().out
    code, _ = run("other", "--reuse-random", str(first), "--warmup", "0.2")  # other hyper
    assert code == 2 and "random_key differs" in capsys.readouterr().err


def test_user_mistakes_are_one_line_errors(tmp_path, model_dir, sst2_dir, capsys):
    base = ["finetune", "--model", str(model_dir), "--output", str(tmp_path / "o")]
    cases = [
        ([], "no data: pass --task with --glue-dir"),
        (["--glue-dir", str(sst2_dir), "--train", "x.tsv", "--task", "sst2"], "drop --train"),
        (["--task", "sst2", "--glue-dir", str(sst2_dir), "--lr", "1e-4,x"], "--lr '1e-4,x'"),
        (["--task", "sst2", "--glue-dir", str(sst2_dir), "--seed-list", "1,1"], "distinct"),
        (["--task", "cola", "--glue-dir", str(sst2_dir)], "no CoLA examples"),
        (["--task", "sst2", "--glue-dir", str(tmp_path)], "no train.tsv or dev.tsv"),
        (["--task", "sst2", "--glue-dir", str(sst2_dir), "--select-fraction", "1"],
         "--select-fraction must be in (0, 1)"),
    ]  # fmt: skip
    for extra, message in cases:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
