"""BertConfig: presets, vocab padding, JSON round trip, HF config.json, bad input."""

from __future__ import annotations

import json

import pytest
import transformers

from ground.errors import UserError
from pretrain.config import PRESETS, BertConfig, preset


def test_padded_vocab_size():
    assert BertConfig(vocab_size=30522).padded_vocab_size == 30528
    assert BertConfig(vocab_size=30528).padded_vocab_size == 30528
    assert BertConfig(vocab_size=28996).padded_vocab_size == 29000  # bert-base-cased
    assert BertConfig(vocab_size=1, vocab_pad_multiple=64).padded_vocab_size == 64


def test_presets():
    sizes = {n: (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size)
             for n in PRESETS for c in [preset(n)]}  # fmt: skip
    assert sizes == {
        "tiny": (2, 128, 2, 512),
        "mini": (4, 256, 4, 1024),
        "small": (4, 512, 8, 2048),
        "base": (12, 768, 12, 3072),
        "large": (24, 1024, 16, 4096),
    }
    base = preset("base")
    assert (base.max_position_embeddings, base.type_vocab_size, base.layer_norm_eps) == (
        512,
        2,
        1e-12,
    )
    assert base.hidden_dropout_prob == base.attention_probs_dropout_prob == 0.1
    with pytest.raises(UserError, match="unknown model preset"):
        preset("huge")


def test_json_round_trip(tmp_path):
    cfg = preset("mini", vocab_size=1000).replace(hidden_dropout_prob=0.0)
    cfg.to_json(tmp_path / "config.json")
    assert BertConfig.from_json(tmp_path / "config.json") == cfg
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left


def test_reads_transformers_config_json(tmp_path):
    hf = transformers.BertConfig(vocab_size=28996, hidden_size=256, num_hidden_layers=3,
                                 num_attention_heads=4, intermediate_size=1024)  # fmt: skip
    hf.to_json_file(tmp_path / "config.json")
    cfg = BertConfig.from_json(tmp_path / "config.json")
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers) == (28996, 256, 3)
    assert cfg.layer_norm_eps == hf.layer_norm_eps and cfg.initializer_range == 0.02


def test_written_config_loads_in_transformers(tmp_path):
    preset("tiny").to_json(tmp_path / "config.json")
    hf = transformers.BertConfig.from_json_file(tmp_path / "config.json")
    assert (hf.hidden_size, hf.num_hidden_layers, hf.vocab_size) == (128, 2, 30522)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"hidden_size": 768, "hiden_layers": 2}), "unknown keys"),
        (json.dumps({"hidden_size": 100, "num_attention_heads": 12}), "not divisible"),
        (json.dumps({"num_hidden_layers": 0}), "positive integer"),
        (json.dumps({"hidden_act": "relu"}), "hidden_act"),
        (json.dumps({"is_decoder": True}), "not supported"),
        (json.dumps({"position_embedding_type": "relative_key"}), "not supported"),
        (json.dumps([1, 2]), "JSON object"),
    ],
)
def test_bad_config_is_user_error(tmp_path, content, match):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(UserError, match=match):
        BertConfig.from_json(path)


def test_missing_config_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        BertConfig.from_json(tmp_path / "nope.json")
