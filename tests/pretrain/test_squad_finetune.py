"""SQuAD through ``bertprep finetune --task squad``: a tiny model overfits real dev questions,
the saved directory is a transformers ``BertForQuestionAnswering`` with our logits, and the two
arms of a run are paired as in classification.

The "pretrained" model is a freshly initialised BERT smaller than the tiny preset (1 layer,
hidden 64), exported as a real one is; a large LR lets it memorise 32 questions in seconds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bertprep.cli import main
from pretrain import export_dir
from pretrain import finetune as ft
from pretrain import finetune_data as fd
from pretrain import squad_model as sm
from pretrain.checkpoint import make_state, save_checkpoint
from pretrain.config import preset
from pretrain.finetune_runs import Hyper, Splits, run_one
from pretrain.model import BertForPreTraining, pad_vocab
from pretrain.squad_data import featurize, read_squad
from pretrain.squad_decode import predict_answers
from pretrain.squad_metrics import squad_scores
from pretrain.squad_task import SquadKind
from tests.conftest import TESTDATA

CFG = replace(preset("tiny"), hidden_size=64, num_hidden_layers=1, intermediate_size=256)
SLICE = TESTDATA / "squad" / "dev-v1.1-slice.json"
WINDOW = dict(max_seq_length=256, doc_stride=128, max_query_length=32)


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
def tok(model_dir):
    return fd.load_tokenizer(None, ft.load_pretrained(model_dir))[0]


def _twice(path: Path) -> Path:
    """The slice with every article twice (the copy's title and ids marked): the one selection
    article (of 8) then has its twin trained on, so the epoch chosen on the selection set is the
    best memorised one, and every question of the slice is trained on once or twice."""
    data = json.loads(SLICE.read_text(encoding="utf-8"))
    copies = json.loads(json.dumps(data["data"]))
    for article in copies:
        article["title"] += " (copy)"
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                qa["id"] += "-copy"
    data["data"] += copies
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_overfits_questions_and_the_export_answers_them(tmp_path, model_dir, tok, capsys):
    from safetensors.torch import load_file
    from transformers import BertForQuestionAnswering

    out = tmp_path / "out"
    argv = ["finetune", "--model", str(model_dir), "--task", "squad", "--output", str(out),
            "--train", str(_twice(tmp_path / "train.json")), "--eval", str(SLICE),
            "--lr", "1e-2", "--epochs", "15", "--batch-size", "16", "--warmup", "0.05",
            *(f"--{k.replace('_', '-')}={v}" for k, v in WINDOW.items())]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["task"] == "squad" and res["metric"] == "f1"
    assert res["reported"] == ["f1", "exact_match"] and res["majority"] is None
    data = res["data"]
    assert data["rows"] == {"train": 56, "select": 8, "dev": 32}  # questions
    assert data["articles"] == {"train": 7, "select": 1, "dev": 4}
    assert data["windows"]["dev"] > 32  # the longest contexts need two windows
    (run,) = res["runs"]
    sel = [e["select"]["f1"] for e in run["epochs"]]
    assert run["best_epoch"] == int(np.argmax(sel)) + 1
    best = run["epochs"][run["best_epoch"] - 1]
    assert set(best["dev"]) == {"f1", "exact_match", "loss"}
    # Memorised: at the chosen epoch (the first whose selection F1 is best), and at the last all
    # but the gold "four" that only the token "fourth" covers (31 of 32).
    assert best["dev"]["exact_match"] >= 0.85, run["epochs"]
    assert run["epochs"][-1]["dev"]["exact_match"] >= 31 / 32, run["epochs"]
    printed = capsys.readouterr().out
    assert "finetune squad: 56 train / 8 selection / 32 dev questions" in printed
    assert "| pretrained |" in (out / "summary.md").read_text()

    # The saved model is transformers' BertForQuestionAnswering, key for key ...
    hf, info = BertForQuestionAnswering.from_pretrained(out / "best", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    hf.eval()
    # ... with our logits (to 1e-5) ...
    ours = sm.BertForQuestionAnswering(CFG)
    state = pad_vocab(load_file(out / "best" / "model.safetensors"), CFG)
    result = ours.load_state_dict(state, strict=False)
    assert set(result.missing_keys) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    feats = featurize(tok, read_squad(SLICE).questions, **WINDOW)
    start, end, _ = sm.predict_logits(ours, feats)
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(feats.input_ids),
                 token_type_ids=torch.from_numpy(feats.token_type_ids),
                 attention_mask=torch.from_numpy(feats.attention_mask))  # fmt: skip
    real = feats.attention_mask.astype(bool)
    np.testing.assert_allclose(ref.start_logits.numpy()[real], start[real], atol=1e-5)
    np.testing.assert_allclose(ref.end_logits.numpy()[real], end[real], atol=1e-5)
    # ... which answers the memorised questions from the real text, as the run reported.
    answers = predict_answers(feats, ref.start_logits.numpy(), ref.end_logits.numpy())
    scores = squad_scores(answers, feats.golds())
    assert scores["exact_match"] == pytest.approx(best["dev"]["exact_match"]), answers
    assert scores["f1"] == pytest.approx(best["dev"]["f1"])


def test_pretraining_export_loads_as_a_span_model_with_a_new_head_only(model_dir):
    from transformers import BertForQuestionAnswering

    _, info = BertForQuestionAnswering.from_pretrained(model_dir, output_loading_info=True)
    assert set(info["missing_keys"]) == {"qa_outputs.weight", "qa_outputs.bias"}, info


def test_arms_are_paired_at_a_seed(model_dir, tok):
    pretrained = ft.load_pretrained(model_dir)
    qs = read_squad(SLICE).questions
    feats = featurize(tok, qs[:8], **WINDOW)
    splits, hp, kind = Splits(feats, feats, feats, 2), Hyper(epochs=1, batch_size=8), SquadKind()
    runs = {(arm, seed): run_one(splits, CFG, pretrained.encoder_state if arm == "pretrained"
                                 else None, arm, 1e-3, seed, hp, "f1", torch.device("cpu"),
                                 kind=kind)[0]
            for arm in ("pretrained", "random") for seed in (0, 1)}  # fmt: skip
    for seed in (0, 1):
        p, r = runs["pretrained", seed], runs["random", seed]
        assert (p["head_init"], p["batch_order"]) == (r["head_init"], r["batch_order"])
    assert runs["pretrained", 0]["head_init"] != runs["pretrained", 1]["head_init"]
    a = sm.build_qa(CFG, pretrained.encoder_state, 3)
    b = sm.build_qa(CFG, None, 3)
    assert torch.equal(a.qa_outputs.weight, b.qa_outputs.weight)
    emb = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(a.state_dict()[emb], b.state_dict()[emb])


def test_grid_with_the_random_arm(tmp_path, model_dir):
    out = tmp_path / "grid"
    argv = ["finetune", "--model", str(model_dir), "--task", "squad", "--train", str(SLICE),
            "--output", str(out), "--lr", "3e-3,1e-2", "--seeds", "2", "--compare-random",
            "--epochs", "1", "--save-best", "--eval-fraction", "0.25",
            *(f"--{k.replace('_', '-')}={v}" for k, v in WINDOW.items())]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["data"]["articles"] == {"train": 2, "select": 1, "dev": 1}  # one file, by article
    assert len(res["runs"]) == 8 and set(res["choice"]) == {"pretrained", "random"}
    assert set(res["paired"]["by_seed"]) == {"0", "1"}
    for arm in ("pretrained", "random"):
        for seed in (0, 1):
            config = json.loads((out / "best" / f"{arm}-seed{seed}" / "config.json").read_text())
            assert config["architectures"] == ["BertForQuestionAnswering"]
    assert "Paired difference, pretrained - random, dev F1" in (out / "summary.md").read_text()


def test_user_mistakes_are_one_line_errors(tmp_path, model_dir, capsys):
    base = ["finetune", "--model", str(model_dir), "--output", str(tmp_path / "o")]
    cases = [
        (["--task", "squad"], "--task squad reads SQuAD JSON"),
        (["--task", "squad", "--train", str(SLICE), "--metric", "accuracy"],
         "SQuAD selects on f1 or exact_match"),
        (["--task", "squad", "--train", str(SLICE), "--doc-stride", "0"], "--doc-stride must be"),
        (["--task", "squad", "--train", str(SLICE), "--max-seq-length", "40"],
         "leaves no context tokens"),
        (["--train", str(SLICE), "--metric", "exact_match"], "is for --task squad"),
    ]  # fmt: skip
    for extra, message in cases:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
