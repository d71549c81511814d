"""Fine-tuning on real GLUE SST-2 dev rows (corpus/finetune) with a tiny model.

The tests use non-default hyperparameters (lr 1e-3, batch 16, more epochs): a 2-layer,
128-wide randomly initialised encoder needs a far larger step than the paper's 2e-5 for BERT-base
to memorise 64 sentences in a few seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ground.errors import UserError
from pretrain import export_dir, finetune_cli
from pretrain import finetune as ft
from pretrain import finetune_data as fd
from pretrain import finetune_metrics as fm
from pretrain.checkpoint import make_state, save_checkpoint
from pretrain.config import preset
from pretrain.model import BertForPreTraining, strip_vocab_padding

CFG = preset("tiny", vocab_size=30522)


@pytest.fixture(autouse=True, scope="module")
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sst2(corpus_dir) -> list[tuple[str, str]]:
    """(sentence, label) rows of the bundled GLUE SST-2 dev file."""
    with open(corpus_dir / "finetune" / "glue-sst2-dev.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["sentence", "label"] and len(rows) == 873
    return [(s, lab) for s, lab in rows[1:]]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory, corpus_dir) -> Path:
    from tokenizers import BertWordPieceTokenizer

    d = tmp_path_factory.mktemp("vocab")
    vocab = corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"
    BertWordPieceTokenizer(str(vocab), lowercase=True).save(str(d / "tokenizer.json"))
    shutil.copyfile(vocab, d / "vocab.txt")
    return d


@pytest.fixture(scope="module")
def pretrained_model() -> BertForPreTraining:
    torch.manual_seed(1)
    return BertForPreTraining(CFG)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tok_dir, pretrained_model) -> Path:
    """What `bertprep export` writes for a checkpoint of ``pretrained_model``."""
    d = tmp_path_factory.mktemp("exported")
    state = make_state(
        step=1, phase=1, config={"model": CFG.to_dict()}, model=pretrained_model, with_rng=False
    )
    save_checkpoint(d / "ckpt-00000001.pt", state)
    return export_dir.export(d / "ckpt-00000001.pt", d / "export", vocab_dir=tok_dir)


def _write_tsv(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n" + "".join(f"{s}\t{lab}\n" for s, lab in rows))
    return path


def _run(**kw) -> int:
    p = argparse.ArgumentParser()
    finetune_cli.add_arguments(p)
    argv = []
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        argv += [flag] if v is True else [flag, str(v)]
    return finetune_cli.run(p.parse_args(argv), [])


def test_overfits_64_examples_and_reloads_in_transformers(tmp_path, exported, sst2):
    from transformers import BertForSequenceClassification

    data = _write_tsv(tmp_path / "train.tsv", sst2[:64])
    out = tmp_path / "out"
    assert _run(model=exported, train=data, eval=data, output=out, lr=1e-3, batch_size=16,
                epochs=12, seed=3) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == list(range(1, 13))
    # eval == train here, evaluated in eval mode: the last epoch has memorised the 58 rows fitted
    # (6 of the 64 are held out as the selection set).
    assert metrics[-1]["eval_accuracy"] >= 0.9, metrics[-1]
    # The epoch is chosen on the selection rows; the eval number is reported at that epoch.
    select = [m["select_accuracy"] for m in metrics]
    assert summary["best_epoch"] == select.index(max(select)) + 1
    assert summary["eval_accuracy"] == metrics[summary["best_epoch"] - 1]["eval_accuracy"]
    labels = [lab for _, lab in sst2[:64]]
    majority = labels.count(summary["majority_label"]) / 64  # the training rows' majority class
    assert summary["majority_baseline_accuracy"] == majority
    assert (summary["num_train"], summary["num_select"], summary["num_eval"]) == (58, 6, 64)

    best = out / "best"
    hf, info = BertForSequenceClassification.from_pretrained(best, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert hf.config.id2label == {0: "0", 1: "1"} and hf.config.num_labels == 2
    ours = ft.build_classifier(CFG, 2, None, seed=0)
    state = load_file(best / "model.safetensors")
    assert ours.load_state_dict(ft.pad_vocab(state, CFG)) is not None
    tok, _ = fd.load_tokenizer(best, ft.load_pretrained(best))
    label2id = {"0": 0, "1": 1}
    enc = fd.encode_examples(tok, [fd.Example(s, None, lab) for s, lab in sst2[:64]], label2id, 128)
    logits = ft.predict(ours, enc)
    assert (logits.argmax(-1) == enc.labels).mean() == summary["eval_accuracy"]
    hf.eval()
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(enc.input_ids),
                 token_type_ids=torch.from_numpy(enc.token_type_ids),
                 attention_mask=torch.from_numpy(enc.attention_mask)).logits  # fmt: skip
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-4, rtol=1e-4)


def test_checkpoint_input_with_frozen_encoder(tmp_path, tok_dir, pretrained_model, sst2):
    ckpt = tmp_path / "ckpt-00000010.pt"
    state = make_state(step=10, phase=1, config={"model": CFG.to_dict()}, model=pretrained_model,
                       with_rng=False)  # fmt: skip
    save_checkpoint(ckpt, state)
    data = _write_tsv(tmp_path / "train.tsv", sst2[:80])
    out = tmp_path / "out"
    assert _run(model=ckpt, vocab_dir=tok_dir, train=data, output=out, eval_fraction=0.25,
                lr=1e-2, batch_size=16, epochs=2, freeze_encoder=True) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    # 20 rows held out as eval, then 10% of the other 60 as the selection set.
    assert (summary["num_train"], summary["num_select"], summary["num_eval"]) == (54, 6, 20)
    saved = load_file(out / "best" / "model.safetensors")
    original = strip_vocab_padding(pretrained_model.state_dict(), CFG.vocab_size)
    encoder_keys = [k for k in saved if k.startswith("bert.")]
    assert len(encoder_keys) == len([k for k in original if k.startswith("bert.")])
    for k in encoder_keys:  # frozen: embeddings and layers; the pooler is head and trains
        assert torch.equal(saved[k], original[k]) != k.startswith("bert.pooler."), k
    fresh = ft.build_classifier(CFG, 2, None, seed=0)  # the head's init under the run's seed
    assert not torch.equal(saved["classifier.weight"], fresh.classifier.weight)
    assert (out / "best" / "vocab.txt").read_bytes() == (tok_dir / "vocab.txt").read_bytes()


def test_checkpoint_without_vocab_dir_is_a_user_error(tmp_path, pretrained_model, sst2):
    ckpt = tmp_path / "c.pt"
    save_checkpoint(ckpt, make_state(step=1, phase=1, config={"model": CFG.to_dict()},
                                     model=pretrained_model, with_rng=False))  # fmt: skip
    data = _write_tsv(tmp_path / "t.tsv", sst2[:10])
    with pytest.raises(UserError, match="--vocab-dir"):
        _run(model=ckpt, train=data, output=tmp_path / "o")


def _pairs(sst2, n):
    """Sentence pairs labelled by whether both sentences have the same sentiment."""
    rows = []
    for i in range(n):
        (a, la), (b, lb) = sst2[2 * i], sst2[2 * i + 1]
        rows.append({"first": a, "second": b, "relation": "same" if la == lb else "different"})
    return rows


def test_sentence_pairs_string_labels_and_determinism(tmp_path, exported, sst2):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _pairs(sst2, 40)))
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert _run(model=exported, train=data, output=out, text_column="first",
                    text_pair_column="second", label_column="relation", epochs=1,
                    batch_size=8, max_seq_length=48) == 0  # fmt: skip
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["labels"] == ["different", "same"]
    config = json.loads((outs[0] / "best" / "config.json").read_text())
    assert config["label2id"] == {"different": 0, "same": 1}
    assert config["architectures"] == ["BertForSequenceClassification"]
    for name in ("metrics.jsonl", "summary.json", "best/model.safetensors", "best/config.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_pair_encoding_matches_reference_tokenizers(tok_dir, sst2):
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    tok = fd.load_tokenizer(tok_dir, ft.Pretrained(CFG, {}, None))[0]
    ex = [fd.Example(a, b, "x") for (a, _), (b, _) in zip(sst2[0:20], sst2[20:40])]
    # No truncation: the tokenizer's own BERT post-processor is the reference.
    ref = BertWordPieceTokenizer(str(tok_dir / "vocab.txt"), lowercase=True)
    enc = fd.encode_examples(tok, ex, {"x": 0}, 512)
    for i, e in enumerate(ex):
        r = ref.encode(e.text_a, e.text_b)
        n = int(enc.attention_mask[i].sum())
        assert enc.input_ids[i, :n].tolist() == r.ids
        assert enc.token_type_ids[i, :n].tolist() == r.type_ids
        assert not enc.input_ids[i, n:].any()
    # Truncation: transformers' longest_first is the reference.
    hf = BertTokenizerFast(str(tok_dir / "vocab.txt"), do_lower_case=True)
    enc = fd.encode_examples(tok, ex, {"x": 0}, 24)
    r = hf([e.text_a for e in ex], [e.text_b for e in ex], truncation="longest_first",
           max_length=24)  # fmt: skip
    for i in range(len(ex)):
        n = int(enc.attention_mask[i].sum())
        assert enc.input_ids[i, :n].tolist() == r["input_ids"][i]
        assert enc.token_type_ids[i, :n].tolist() == r["token_type_ids"][i]


def test_label_map_split_metrics_and_schedule():
    assert fd.build_label_map(["10", "2", "2"]) == ["2", "10"]
    assert fd.build_label_map(["pos", "neg"]) == ["neg", "pos"]
    tr, ev = fd.split_train_eval(100, 0.2, seed=5)
    assert len(ev) == 20 and sorted(np.concatenate([tr, ev]).tolist()) == list(range(100))
    tr2, ev2 = fd.split_train_eval(100, 0.2, seed=5)
    with pytest.raises(UserError, match="--select-fraction must be in"):
        fd.split_train_eval(100, 1.0, seed=5, flag="--select-fraction")
    assert np.array_equal(ev, ev2) and not np.array_equal(ev, fd.split_train_eval(100, 0.2, 6)[1])
    # Longest-first: the shorter side is kept when under half the budget; B wins a tie.
    assert fd.truncate_pair(30, 5, 21) == (16, 5) and fd.truncate_pair(11, 11, 21) == (10, 11)
    assert fd.truncate_pair(20, 15, 21) == (11, 10) and fd.truncate_pair(40, 0, 126) == (40, 0)
    # Hand-computed: class 0 F1 = 2/3, class 1 F1 = 4/5.
    m = fm.classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert m["accuracy"] == 0.75 and m["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    sched = ft.LinearWarmup(total_steps=10, warmup_steps=2)
    assert [sched(s) for s in (0, 1, 2, 6, 10)] == [0.0, 0.5, 1.0, 0.5, 0.0]
    model = ft.build_classifier(CFG, 3, None, seed=0)
    opt = ft.make_optimizer(model, 1e-3, 0.01)
    no_decay = {id(p) for p in opt.param_groups[1]["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in no_decay) == (name.endswith("bias") or "LayerNorm" in name), name


def test_bad_inputs_are_user_errors(tmp_path, exported, sst2):
    good = _write_tsv(tmp_path / "good.tsv", sst2[:20])
    with pytest.raises(UserError, match=r"\['text'\] not found; columns present: \['sentence', 'l"):
        fd.read_examples(good, "text", "label")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="no examples"):
        fd.read_examples(empty, "sentence", "label")
    one = _write_tsv(tmp_path / "one.tsv", [(s, "1") for s, lab in sst2[:30] if lab == "1"])
    with pytest.raises(UserError, match="at least two label classes"):
        _run(model=exported, train=one, output=tmp_path / "o1")
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"sentence": "a", "label": 1}\nnot json\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: not valid JSON"):
        fd.read_examples(bad_json, "sentence", "label")
    quoted = tmp_path / "q.csv"
    quoted.write_text('label,sentence\npos,"fine, really ""good"""\n3,plain\n')
    res = fd.read_examples(quoted, "sentence", "label")
    assert res.examples == [fd.Example('fine, really "good"', None, "pos"),
                            fd.Example("plain", None, "3")]  # fmt: skip
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("sentence\tlabel\ngood one\t1\nno label here\nbad one\t0\n")
    res = fd.read_examples(ragged, "sentence", "label")
    assert [e.label for e in res.examples] == ["1", "0"]
    assert res.skipped == {"wrong number of fields": 1}

    with pytest.raises(UserError, match="not a torch device"):
        _run(model=exported, train=good, output=tmp_path / "o0", device="tpu9")

    for model in (tmp_path / "nope", tmp_path, tmp_path / "garbage.pt"):
        if model.name == "garbage.pt":
            model.write_bytes(b"not a checkpoint")
        with pytest.raises(UserError, match="model|checkpoint"):
            _run(model=model, train=good, output=tmp_path / "o2")
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(UserError, match="unreadable safetensors"):
        _run(model=broken, train=good, output=tmp_path / "o3")


def test_an_eval_label_train_never_shows_is_refused_and_skips_are_printed(
    tmp_path, exported, sst2, capsys
):
    train = _write_tsv(tmp_path / "train.tsv", sst2[:40])
    dev_rows = sst2[40:60] + [("a sentence with a third label", "2")] * 3
    dev = _write_tsv(tmp_path / "dev.tsv", dev_rows)
    with pytest.raises(UserError, match=r"label\(s\) \['2'\] \(3 rows\) never appear"):
        _run(model=exported, train=train, eval=dev, output=tmp_path / "o1", epochs=1)
    # A row without a label is skipped, counted, and said on stdout (not only in summary.json).
    with open(train, "a", encoding="utf-8") as f:
        f.write("a sentence without its label\t\n")
    dev = _write_tsv(tmp_path / "dev2.tsv", sst2[40:60])
    assert _run(model=exported, train=train, eval=dev, output=tmp_path / "o2", epochs=1) == 0
    assert "finetune: skipped 1 train rows: {'empty text or label': 1}" in capsys.readouterr().out
