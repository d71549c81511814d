"""`bertprep import`: transformers BERT directories -> our checkpoint (round trip with export,
models saved by transformers itself, old key names in a .bin, bare BertModel, vocab checks)."""

from __future__ import annotations

import argparse

import pytest
import torch
import transformers

from ground.errors import UserError
from pipeline.vocab.files import load_vocab, write_vocab_dir
from pretrain import export_dir, import_cli, import_hf
from pretrain.checkpoint import load_checkpoint, make_state, save_checkpoint
from pretrain.config import BertConfig, preset
from pretrain.model import BertForPreTraining

# vocab_size 997 is padded to 1000 by our model: import must add the rows.
HF_SMALL = dict(
    vocab_size=997,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
)


def _hf_model(seed: int = 0) -> transformers.BertForPreTraining:
    """A transformers model with non-trivial LayerNorm and bias values."""
    torch.manual_seed(seed)
    model = transformers.BertForPreTraining(transformers.BertConfig(**HF_SMALL))
    with torch.no_grad():
        for p in model.parameters():
            p += 0.05 * torch.randn_like(p)
    return model.eval()


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 997, (3, 20), generator=g)
    tt = (torch.arange(20) >= 9).long().expand(3, 20).clone()
    am = torch.ones(3, 20, dtype=torch.long)
    am[1, 14:] = 0
    pos = torch.tensor([[1, 5, 12], [2, 3, 10], [4, 9, 19]])
    return ids, tt, am, pos


def _assert_same_logits(ours: BertForPreTraining, hf) -> None:
    ids, tt, am, pos = _batch()
    with torch.no_grad():
        mine = ours.eval()(ids, tt, am, pos)
        theirs = hf(input_ids=ids, token_type_ids=tt, attention_mask=am)
    ref = theirs.prediction_logits.gather(1, pos[..., None].expand(-1, -1, 997))
    torch.testing.assert_close(mine["mlm_logits"][..., :997], ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine["nsp_logits"], theirs.seq_relationship_logits)
    assert (mine["mlm_logits"][..., 997:] <= -9000).all()  # padded rows never predicted


def _load_ours(ckpt) -> tuple[BertForPreTraining, dict]:
    state = load_checkpoint(ckpt)
    cfg = BertConfig.from_json(import_hf.config_path(ckpt))
    assert cfg.to_dict() == state["config"]["model"]
    model = BertForPreTraining(cfg)
    model.load_state_dict(state["model"])  # strict
    return model, state


def test_transformers_save_pretrained_imports_with_equal_logits(tmp_path):
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "hf")
    info = import_hf.import_hf(tmp_path / "hf", tmp_path / "ckpt.pt")
    assert info["initialised"] == [] and info["new_terms"] == 0
    ours, state = _load_ours(tmp_path / "ckpt.pt")
    assert state["step"] == 0 and state["optimizer"] is None and state["rng"] is None
    assert ours.config.padded_vocab_size == 1000
    _assert_same_logits(ours, hf)


def test_old_key_names_in_pytorch_model_bin(tmp_path):
    """Google-converted style: LayerNorm gamma/beta, stored decoder weight, position_ids."""
    hf = _hf_model(seed=1)
    sd = {}
    for k, v in hf.state_dict().items():
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        )
        sd[k] = v.clone()
    sd["bert.embeddings.position_ids"] = torch.arange(64)[None]
    assert "cls.predictions.decoder.weight" in sd
    (tmp_path / "hf").mkdir()
    torch.save(sd, tmp_path / "hf" / "pytorch_model.bin")
    hf.config.to_json_file(tmp_path / "hf" / "config.json")
    import_hf.import_hf(tmp_path / "hf", tmp_path / "ckpt.pt")
    _assert_same_logits(_load_ours(tmp_path / "ckpt.pt")[0], hf)


def test_bare_bert_model_gets_fresh_heads(tmp_path):
    hf = _hf_model(seed=2)
    hf.bert.save_pretrained(tmp_path / "hf")  # a BertModel: no cls.* weights
    info = import_hf.import_hf(tmp_path / "hf", tmp_path / "ckpt.pt", seed=3)
    assert "cls.seq_relationship.weight" in info["initialised"]
    assert all(k.startswith("cls.") for k in info["initialised"])
    ours, _ = _load_ours(tmp_path / "ckpt.pt")
    torch.testing.assert_close(
        ours.bert.encoder.layer[1].output.dense.weight, hf.bert.encoder.layer[1].output.dense.weight
    )


def test_export_import_round_trip(tmp_path, corpus_dir):
    cfg = preset("tiny", vocab_size=30522)
    torch.manual_seed(5)
    model = BertForPreTraining(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p[: cfg.vocab_size] += 0.05 * torch.randn_like(p[: cfg.vocab_size])
    ckpt = tmp_path / "train" / "checkpoints" / "ckpt-00000007.pt"
    save_checkpoint(ckpt, make_state(step=7, phase=2, config={"model": cfg.to_dict()},
                                     model=model, with_rng=False))  # fmt: skip
    tokens = load_vocab(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt").tokens
    write_vocab_dir(tmp_path / "vocab", tokens, lowercase=True, strip_accents=None)
    out = export_dir.export(ckpt, tmp_path / "export")
    import_hf.import_hf(out, tmp_path / "back.pt")
    back = load_checkpoint(tmp_path / "back.pt")["model"]
    orig = model.state_dict()
    assert set(back) == set(orig)
    for k, v in orig.items():
        assert torch.equal(back[k], v), k
    # Padded rows come back as training keeps them (zero embeddings, -1e4 bias).
    assert (back["bert.embeddings.word_embeddings.weight"][30522:] == 0).all()
    assert (back["cls.predictions.bias"][30522:] == -1e4).all()


def test_extend_vocab(tmp_path, corpus_dir):
    base = load_vocab(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt").tokens
    cfg = preset("tiny", vocab_size=len(base))
    hf = transformers.BertForPreTraining(
        transformers.BertConfig(
            **{k: v for k, v in cfg.to_dict().items() if k != "vocab_pad_multiple"}
        )
    )
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.txt").write_text("".join(t + "\n" for t in base))
    ext = list(base)
    ext[base.index("[unused0]")], ext[base.index("[unused1]")] = "mitochondria", "ribosome"
    (tmp_path / "ext.txt").write_text("".join(t + "\n" for t in ext))
    parser = argparse.ArgumentParser()
    import_cli.add_arguments(parser)
    args = parser.parse_args(
        [str(tmp_path / "hf"), str(tmp_path / "c.pt"), "--extend-vocab", str(tmp_path / "ext.txt")]
    )
    assert import_cli.run(args, []) == 0
    assert load_checkpoint(tmp_path / "c.pt")["config"]["import"]["new_terms"] == 2
    bad = list(ext)
    bad[base.index("the")] = "mitochondrion"  # an existing token moved: ids would shift
    (tmp_path / "bad.txt").write_text("".join(t + "\n" for t in bad))
    with pytest.raises(UserError, match="only replace \\[unusedN\\]"):
        import_hf.import_hf(tmp_path / "hf", tmp_path / "d.pt", str(tmp_path / "bad.txt"))
    (tmp_path / "short.txt").write_text("".join(t + "\n" for t in ext[:-1]))
    with pytest.raises(UserError, match="30521 tokens"):
        import_hf.import_hf(tmp_path / "hf", tmp_path / "d.pt", str(tmp_path / "short.txt"))
    assert not (tmp_path / "d.pt").exists()


def test_bad_hf_dirs(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        import_hf.import_hf(tmp_path / "nope", tmp_path / "c.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        import_hf.import_hf(tmp_path / "empty", tmp_path / "c.pt")
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"\x10\x00garbage")
    with pytest.raises(UserError, match="cannot read the weights"):
        import_hf.import_hf(tmp_path / "hf", tmp_path / "c.pt")
    (tmp_path / "hf" / "model.safetensors").unlink()
    with pytest.raises(UserError, match="no model.safetensors"):
        import_hf.import_hf(tmp_path / "hf", tmp_path / "c.pt")
    # A fine-tuned classifier: encoder present, classifier.* not a pretraining weight.
    transformers.BertForSequenceClassification(hf.config).save_pretrained(tmp_path / "clf")
    with pytest.raises(UserError, match="unexpected weights classifier"):
        import_hf.import_hf(tmp_path / "clf", tmp_path / "c.pt")
    # An architecture we do not build.
    hf.config.hidden_act = "relu"
    hf.save_pretrained(tmp_path / "relu")
    with pytest.raises(UserError, match="hidden_act"):
        import_hf.import_hf(tmp_path / "relu", tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_build_train_export_import_continue(corpus_dir, tmp_path):
    """The real path: shards -> 2 training steps -> export (vocab found in RUN/vocab) ->
    transformers loads it -> import -> `train --init-from` starts from exactly those weights."""
    import shutil
    import signal

    from bertprep.cli import main as bertprep

    (tmp_path / "books").mkdir()
    shutil.copy(corpus_dir / "books" / "1952-0.txt", tmp_path / "books")
    run = tmp_path / "run"
    assert bertprep(["build", "--books", str(tmp_path / "books"), "--output", str(run),
                     "--vocab-size", "1000", "--dupe-factor", "1", "--num-shards", "1",
                     "--validation-fraction", "0.2"]) == 0  # fmt: skip
    common = ["train", "--data", str(run / "seq128"), "--recipe", "cpu-demo", "--max-steps", "2",
              "--global-batch", "8"]  # fmt: skip

    def train(*args):  # in-process: no second torch start-up
        handler = signal.getsignal(signal.SIGTERM)
        assert bertprep([*common, *args]) == 0
        # the caller's SIGTERM handler is back (a leaked one made forked children unkillable)
        assert signal.getsignal(signal.SIGTERM) is handler

    train("--output", str(run / "p1"), "--model", "tiny")
    out = export_dir.export(run / "p1", run / "export")  # vocab from RUN/vocab
    hf, info = transformers.BertForPreTraining.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert hf.config.vocab_size == len(load_vocab(run / "vocab" / "vocab.txt").tokens)
    import_hf.import_hf(out, run / "imported.pt")
    # lr 0: LAMB leaves the weights unchanged, so the new run's checkpoint must equal p1's.
    train("--output", str(run / "p1b"), "--config", str(run / "imported.config.json"),
          "--init-from", str(run / "imported.pt"), "--lr", "0")  # fmt: skip
    before = load_checkpoint(run / "p1" / "checkpoints" / "ckpt-00000002.pt")["model"]
    after = load_checkpoint(run / "p1b" / "checkpoints" / "ckpt-00000002.pt")["model"]
    for k, v in before.items():
        assert torch.equal(after[k], v), k
