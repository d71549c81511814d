"""`bertprep export`: transformers loads the directory with no key mismatch, gives our MLM/NSP
logits on real SST-2 text, and tokenises like our tokenizer; dtype, determinism, bad inputs."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json

import pytest
import torch
import transformers
from tokenizers import Tokenizer

from ground.errors import UserError
from pipeline.vocab.files import load_vocab, write_vocab_dir
from pretrain import export_cli, export_dir
from pretrain.checkpoint import make_state, save_checkpoint
from pretrain.config import preset
from pretrain.model import BertForPreTraining


def _perturbed_model(seed: int = 0) -> BertForPreTraining:
    """Tiny model over the bert-base-uncased vocab with every weight moved off its init
    (LayerNorm included), except the padded vocab rows, which keep their training values."""
    cfg = preset("tiny", vocab_size=30522)
    torch.manual_seed(seed)
    model = BertForPreTraining(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "word_embeddings" in name or name == "cls.predictions.bias":
                p[: cfg.vocab_size] += 0.05 * torch.randn_like(p[: cfg.vocab_size])
            else:
                p += 0.05 * torch.randn_like(p)
    return model.eval()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, corpus_dir):
    """RUN/vocab (uncased vocab + tokenizer.json as `bertprep vocab` writes them) and
    RUN/train/checkpoints/ckpt-00000002.pt, the standard layout export searches."""
    run = tmp_path_factory.mktemp("run")
    tokens = load_vocab(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt").tokens
    write_vocab_dir(run / "vocab", tokens, lowercase=True, strip_accents=None)
    model = _perturbed_model()
    state = make_state(
        step=2, phase=1, config={"model": model.config.to_dict()}, model=model, with_rng=False
    )
    save_checkpoint(run / "train" / "checkpoints" / "ckpt-00000002.pt", state)
    return run


@pytest.fixture(scope="module")
def exported(run_dir):
    return export_dir.export(run_dir / "train", run_dir / "export")


def _sst2_pairs(corpus_dir, n: int) -> list[tuple[str, str]]:
    with open(corpus_dir / "finetune" / "glue-sst2-dev.tsv", encoding="utf-8") as f:
        rows = [r["sentence"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return list(zip(rows[0 : 2 * n : 2], rows[1 : 2 * n : 2]))


def test_files_and_config(exported):
    names = sorted(p.name for p in exported.iterdir())
    assert names == sorted(
        [
            "config.json",
            "model.safetensors",
            "vocab.txt",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
        ]
    )
    cfg = transformers.AutoConfig.from_pretrained(exported)
    assert cfg.model_type == "bert" and cfg.architectures == ["BertForPreTraining"]
    assert cfg.vocab_size == 30522 and cfg.hidden_size == 128 and cfg.num_hidden_layers == 2
    assert not list(exported.parent.glob(".export.*"))  # temp dir renamed away


def test_transformers_loads_without_key_mismatch(exported):
    _, info = transformers.BertForPreTraining.from_pretrained(exported, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    _, info = transformers.BertForSequenceClassification.from_pretrained(
        exported, num_labels=2, output_loading_info=True
    )
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}
    assert info["unexpected_keys"] and all(k.startswith("cls.") for k in info["unexpected_keys"])
    assert not info["mismatched_keys"]


def test_logits_equal_ours_on_sst2(exported, corpus_dir):
    ours = _perturbed_model()
    hf = transformers.BertForPreTraining.from_pretrained(exported).eval()
    tok = transformers.BertTokenizerFast.from_pretrained(exported)
    pairs = _sst2_pairs(corpus_dir, 8)
    enc = tok([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    ids, tt, am = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
    assert am.min() == 0 and tt.max() == 1  # padding and sentence B both exercised
    lengths = am.sum(1)
    # Mask 4 real positions per sequence (spread over the sequence), as pretraining does.
    pos = torch.stack([torch.linspace(1, int(n) - 2, 4).long() for n in lengths])
    ids = ids.scatter(1, pos, tok.mask_token_id)
    with torch.no_grad():
        mine = ours(ids, tt, am, pos)
        theirs = hf(input_ids=ids, token_type_ids=tt, attention_mask=am)
    gathered = theirs.prediction_logits.gather(
        1, pos[..., None].expand(-1, -1, theirs.prediction_logits.shape[-1])
    )
    torch.testing.assert_close(mine["mlm_logits"][..., :30522], gathered, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        mine["nsp_logits"], theirs.seq_relationship_logits, atol=1e-5, rtol=1e-5
    )
    assert gathered.std() > 0.1  # the comparison is not between near-constant logits


def test_exported_tokenizer_gives_our_ids(exported, run_dir, corpus_dir):
    ours = Tokenizer.from_file(str(run_dir / "vocab" / "tokenizer.json"))
    tok = transformers.BertTokenizerFast.from_pretrained(exported)
    pairs = _sst2_pairs(corpus_dir, 400)
    texts = [a for a, _ in pairs] + [b for _, b in pairs] + ["Café NAÏVE résumé 東京 x\u00adyz"]
    theirs = tok(texts)["input_ids"]
    assert theirs == [e.ids for e in ours.encode_batch(texts)]
    a, b = pairs[0]
    assert tok(a, b)["input_ids"] == ours.encode(a, b).ids
    assert (exported / "vocab.txt").read_bytes() == (run_dir / "vocab" / "vocab.txt").read_bytes()
    tok_cfg = json.loads((exported / "tokenizer_config.json").read_text())
    assert tok_cfg["do_lower_case"] is True and tok_cfg["model_max_length"] == 512
    assert tok("Hello WORLD")["input_ids"] == tok("hello world")["input_ids"]


def test_fp16_halves_the_file_and_is_deterministic(run_dir, exported, tmp_path):
    half = export_dir.export(run_dir / "train", tmp_path / "fp16", dtype="fp16")
    size32 = (exported / "model.safetensors").stat().st_size
    size16 = (half / "model.safetensors").stat().st_size
    assert 0.49 < size16 / size32 < 0.51
    model = transformers.BertForPreTraining.from_pretrained(half, dtype=torch.float16)
    assert model.bert.embeddings.word_embeddings.weight.dtype == torch.float16
    ref = _perturbed_model().state_dict()["bert.encoder.layer.0.output.dense.weight"]
    got = model.state_dict()["bert.encoder.layer.0.output.dense.weight"]
    assert torch.equal(got, ref.half())
    again = export_dir.export(run_dir / "train", tmp_path / "again")

    def digest(d):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir()}

    assert digest(again) == digest(exported)


def test_cli_arguments_and_overwrite(run_dir, exported, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    export_cli.add_arguments(parser)
    ckpt = run_dir / "train" / "checkpoints" / "ckpt-00000002.pt"
    out = tmp_path / "cli"
    args = parser.parse_args([str(ckpt), str(out), "--vocab-dir", str(run_dir / "vocab")])
    assert export_cli.run(args, []) == 0
    assert (out / "model.safetensors").read_bytes() == (exported / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="not empty"):
        export_cli.run(args, [])
    args = parser.parse_args([str(ckpt), str(out), "--overwrite", "--dtype", "bf16"])
    assert export_cli.run(args, []) == 0
    assert transformers.AutoConfig.from_pretrained(out).dtype == torch.bfloat16


def test_bad_inputs(run_dir, corpus_dir, tmp_path):
    with pytest.raises(UserError, match="no such file"):
        export_dir.export(tmp_path / "missing.pt", tmp_path / "o1")
    bad = tmp_path / "train" / "checkpoints" / "ckpt-00000001.pt"
    bad.parent.mkdir(parents=True)
    good = (run_dir / "train" / "checkpoints" / "ckpt-00000002.pt").read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # truncated mid-write
    with pytest.raises(UserError, match="corrupt"):
        export_dir.export(bad, tmp_path / "o2", vocab_dir=run_dir / "vocab")
    # No vocab next to a checkpoint outside a run layout.
    lone = tmp_path / "lone" / "checkpoints" / "ckpt-00000002.pt"
    lone.parent.mkdir(parents=True)
    lone.write_bytes(good)
    with pytest.raises(UserError, match="--vocab-dir"):
        export_dir.export(lone, tmp_path / "o3")
    # A vocab of another size (the cased vocab has 28996 tokens).
    cased = load_vocab(corpus_dir / "vocab" / "bert-base-cased-vocab.txt").tokens
    write_vocab_dir(tmp_path / "cased", cased, lowercase=False, strip_accents=None)
    with pytest.raises(UserError, match="28996 tokens"):
        export_dir.export(lone, tmp_path / "o4", vocab_dir=tmp_path / "cased")
    # Weights that do not fit the recorded config (3 layers claimed, 2 stored).
    model = _perturbed_model()
    cfg3 = model.config.replace(num_hidden_layers=3).to_dict()
    wrong = tmp_path / "wrong" / "checkpoints" / "ckpt-00000001.pt"
    save_checkpoint(wrong, make_state(step=1, phase=1, config={"model": cfg3}, model=model))
    with pytest.raises(UserError, match="missing bert.encoder.layer.2"):
        export_dir.export(wrong, tmp_path / "o6", vocab_dir=run_dir / "vocab")
    # tokenizer.json missing.
    (tmp_path / "novocab").mkdir()
    (tmp_path / "novocab" / "vocab.txt").write_bytes(b"[PAD]\n")
    with pytest.raises(UserError, match="tokenizer.json"):
        export_dir.export(lone, tmp_path / "o5", vocab_dir=tmp_path / "novocab")
    # OUT_DIR is a file: said so, not "exists and is not empty".
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UserError, match="plain is a file"):
        export_dir.export(lone, tmp_path / "plain", vocab_dir=run_dir / "vocab")
    assert not any(p.name.startswith(("o", ".o")) for p in tmp_path.iterdir())
