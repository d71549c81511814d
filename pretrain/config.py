"""BERT model configuration: one dataclass, named presets, JSON round trip.

The JSON field names are the ones of Hugging Face's ``BertConfig`` (``config.json``), so a
config exported here loads in ``transformers`` and an HF ``config.json`` loads here (HF-only
keys such as ``architectures`` are ignored, unknown keys are an error).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ground.atomic import write_text
from ground.errors import UserError

# Keys an HF config.json carries that do not change the architecture we build.
_HF_IGNORED_KEYS = frozenset(
    {
        "architectures",
        "model_type",
        "transformers_version",
        "torch_dtype",
        "dtype",
        "pad_token_id",
        "use_cache",
        "classifier_dropout",
        "gradient_checkpointing",
        "_name_or_path",
        "directionality",
        "pooler_fc_size",
        "pooler_num_attention_heads",
        "pooler_num_fc_layers",
        "pooler_size_per_head",
        "pooler_type",
        "bos_token_id",
        "eos_token_id",
    }
)
# HF keys accepted only with the value that describes the architecture we build.
_HF_REQUIRED_VALUES = {
    "is_decoder": False,
    "add_cross_attention": False,
    "tie_word_embeddings": True,
    "position_embedding_type": "absolute",
}


@dataclass(frozen=True)
class BertConfig:
    """Architecture of a BERT encoder with pretraining heads.

    Attributes:
        vocab_size: tokenizer vocabulary size (rows of the exported embedding matrix).
        hidden_size: model width H.
        num_hidden_layers: number of transformer layers.
        num_attention_heads: attention heads per layer; must divide ``hidden_size``.
        intermediate_size: width of the feed-forward layer (usually 4 H).
        hidden_act: feed-forward activation; only ``"gelu"`` (exact, erf-based) is built.
        hidden_dropout_prob: dropout on embeddings and on every residual branch.
        attention_probs_dropout_prob: dropout on attention probabilities.
        max_position_embeddings: rows of the learned position table (512 in both phases).
        type_vocab_size: segment (token type) ids, 2 for sentence A / B.
        initializer_range: std of the normal init of every weight matrix and embedding.
        layer_norm_eps: LayerNorm epsilon (BERT's 1e-12).
        vocab_pad_multiple: the embedding/decoder rows are padded to a multiple of this
            for efficient GEMMs; the padded rows are dropped on export.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    vocab_pad_multiple: int = 8

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "vocab_pad_multiple",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise UserError(
                f"model config: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act != "gelu":
            raise UserError(f"model config: hidden_act must be 'gelu', got {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"model config: {name} must be in [0, 1)")

    @property
    def padded_vocab_size(self) -> int:
        """``vocab_size`` rounded up to a multiple of ``vocab_pad_multiple`` (30522 -> 30528)."""
        m = self.vocab_pad_multiple
        return math.ceil(self.vocab_size / m) * m

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    def replace(self, **changes) -> BertConfig:
        """A copy with some fields changed (e.g. ``hidden_dropout_prob=0.0`` for tests)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict of all fields (JSON- and ``weights_only``-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BertConfig:
        """Build from a dict of our fields or an HF ``BertConfig`` dict.

        Raises:
            UserError: unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise UserError("model config: expected a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - _HF_IGNORED_KEYS - set(_HF_REQUIRED_VALUES))
        if unknown:
            raise UserError(f"model config: unknown keys {unknown}")
        for key, value in _HF_REQUIRED_VALUES.items():
            if data.get(key, value) != value:
                raise UserError(f"model config: {key}={data[key]!r} is not supported")
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the config as indented JSON, atomically (temp file + rename)."""

        write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> BertConfig:
        """Read a config written by :meth:`to_json` or an HF ``config.json``.

        Raises:
            UserError: missing file, invalid JSON, unknown keys or invalid values.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"model config {path}: no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"model config {path}: not valid JSON ({e})") from None
        return cls.from_dict(data)


# name -> (layers, hidden, heads, intermediate). tiny is for tests, mini/small for CPU demos
# and one GPU (Turc et al. 2019 "well-read students" sizes), base/large as in the BERT paper.
_PRESET_SIZES = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
}
PRESETS = tuple(_PRESET_SIZES)


def preset(name: str, vocab_size: int = 30522) -> BertConfig:
    """The named preset (``tiny``, ``mini``, ``small``, ``base``, ``large``).

    Raises:
        UserError: unknown preset name.
    """
    if name not in _PRESET_SIZES:
        raise UserError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    layers, hidden, heads, inter = _PRESET_SIZES[name]
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
    )
