"""Our checkpoints <-> transformers BERT directories: pure conversions of configs, weights, vocab.

Export layout (what ``transformers`` ``save_pretrained`` writes for ``BertForPreTraining``, plus
the tokenizer files): ``config.json``, ``model.safetensors``, ``vocab.txt``, ``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``.

Weights: the padded vocabulary rows (see :mod:`pretrain.model`) are dropped. The MLM decoder
weight is tied to the word embeddings and ``cls.predictions.decoder.bias`` is the same tensor as
``cls.predictions.bias``; ``save_pretrained`` (transformers 4.x and 5.x) stores each tied tensor
once, under ``bert.embeddings.word_embeddings.weight`` and ``cls.predictions.bias``, and
``from_pretrained`` re-ties them, reporting no missing keys. We write exactly those keys.

Import is the inverse (:func:`from_hf_state_dict`): it also accepts the older names found in
Google-converted checkpoints (LayerNorm ``gamma``/``beta``, a stored decoder weight, the
``position_ids`` buffer) and a bare ``BertModel`` (no ``bert.`` prefix, no heads).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from ground.errors import UserError
from pretrain.config import BertConfig
from pretrain.model import BertForPreTraining, pad_vocab, strip_vocab_padding
from sharding.vocab import check_tokens, parse_vocab_txt

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
# Tensors that alias another one in our model and in transformers' (stored once on export).
TIED = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
_DROPPED_ON_IMPORT = ("bert.embeddings.position_ids",)  # a buffer in transformers < 4.31


def hf_config_dict(cfg: BertConfig, dtype: str = "fp32") -> dict:
    """transformers ``config.json`` content for ``cfg`` (unpadded ``vocab_size``)."""
    data = cfg.to_dict()
    data.pop("vocab_pad_multiple")  # ours only: export has no padded rows
    data.update(
        architectures=["BertForPreTraining"],
        model_type="bert",
        pad_token_id=0,
        position_embedding_type="absolute",
        tie_word_embeddings=True,
        is_decoder=False,
        dtype={"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}[dtype],
    )
    return data


def hf_state_dict(state_dict: dict, cfg: BertConfig, dtype: str = "fp32") -> dict:
    """Our (padded) model state dict -> the tensors to store in ``model.safetensors``.

    Drops the padded vocabulary rows and the tied aliases in :data:`TIED`, casts floating
    tensors to ``dtype`` and returns contiguous copies (safetensors refuses shared storage).

    Raises:
        UserError: the state dict does not fit ``cfg`` (wrong vocab rows) or the tied tensors
            differ (the model would not be a BERT with tied embeddings).
    """
    check_state_dict(state_dict, cfg)
    for alias, name in TIED.items():
        if alias in state_dict and not torch.equal(state_dict[alias], state_dict[name]):
            raise UserError(f"checkpoint: {alias} differs from {name}; they must be tied")
    out = {}
    for name, t in strip_vocab_padding(state_dict, cfg.vocab_size).items():
        if name in TIED:
            continue
        if t.is_floating_point():
            t = t.to(DTYPES[dtype])
        out[name] = t.detach().contiguous().clone()
    return out


def check_state_dict(state_dict: dict, cfg: BertConfig) -> None:
    """Raise :class:`UserError` unless ``state_dict`` has exactly our model's keys and shapes.

    The reference model is built on the meta device (shapes only, no memory, no init cost).
    """

    with torch.device("meta"):
        ref = BertForPreTraining(cfg).state_dict()
    missing, extra = sorted(set(ref) - set(state_dict)), sorted(set(state_dict) - set(ref))
    if missing or extra:
        raise UserError(
            f"checkpoint weights do not fit its config: missing {_few(missing) or 'none'}, "
            f"unexpected {_few(extra) or 'none'}"
        )
    for k, v in ref.items():
        if tuple(state_dict[k].shape) != tuple(v.shape):
            raise UserError(
                f"checkpoint weights do not fit its config: {k} is "
                f"{tuple(state_dict[k].shape)}, expected {tuple(v.shape)}"
            )


def normalize_hf_keys(state_dict: dict) -> dict:
    """Rename older transformers / TF-converted keys to the current names.

    ``LayerNorm.gamma``/``beta`` -> ``weight``/``bias``; a ``BertModel`` state dict (keys
    ``embeddings.*``, ``encoder.*``, ``pooler.*``) gets the ``bert.`` prefix; the
    ``position_ids`` buffer is dropped.
    """
    out = {}
    bare = not any(k.startswith("bert.") for k in state_dict)
    for k, v in state_dict.items():
        if k.endswith("LayerNorm.gamma"):
            k = k[: -len("gamma")] + "weight"
        elif k.endswith("LayerNorm.beta"):
            k = k[: -len("beta")] + "bias"
        if bare and k.split(".", 1)[0] in ("embeddings", "encoder", "pooler"):
            k = "bert." + k
        if k not in _DROPPED_ON_IMPORT:
            out[k] = v
    return out


def from_hf_state_dict(hf: dict, cfg: BertConfig, fresh: dict) -> tuple[dict, list[str]]:
    """A transformers BERT state dict -> our padded fp32 state dict for ``cfg``.

    Args:
        hf: tensors as loaded from ``model.safetensors`` / ``pytorch_model.bin``.
        cfg: the model config (from the directory's ``config.json``).
        fresh: a freshly initialised ``BertForPreTraining(cfg).state_dict()``; missing
            pretraining heads (``cls.*``, e.g. a bare ``BertModel``) are taken from it.

    Returns:
        ``(state_dict, initialised)``: the state dict (vocab rows padded, ties restored) and
        the sorted names of the ``cls.*`` tensors that came from ``fresh``.

    Raises:
        UserError: encoder weights missing, unexpected keys, wrong shapes, or tied tensors
            that differ.
    """
    sd = normalize_hf_keys(hf)
    for alias, name in TIED.items():
        if alias in sd:
            if name in sd and not torch.equal(sd[alias].float(), sd[name].float()):
                raise UserError(f"{alias} differs from {name}: only tied embeddings are supported")
            sd.setdefault(name, sd[alias])
            del sd[alias]
    unexpected = sorted(set(sd) - set(fresh))
    if unexpected:
        raise UserError(f"unexpected weights {_few(unexpected)}: not a BERT for pretraining")
    sd = {k: v.float() for k, v in sd.items()}
    sd = pad_vocab(sd, cfg)
    initialised = []
    for k, v in fresh.items():
        if k in TIED:
            continue
        if k not in sd:
            if not k.startswith("cls."):
                raise UserError(f"missing weights {_few(sorted(set(fresh) - set(sd) - set(TIED)))}")
            sd[k] = v.clone()
            initialised.append(k)
        elif sd[k].shape != v.shape:
            raise UserError(f"{k}: shape {tuple(sd[k].shape)} does not fit config {tuple(v.shape)}")
    for alias, name in TIED.items():
        sd[alias] = sd[name]
    return sd, sorted(initialised)


def _few(names: list[str], n: int = 5) -> str:
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def read_vocab_dir(vocab_dir: str | Path) -> tuple[list[str], str, dict]:
    """Read ``vocab.txt`` and ``tokenizer.json`` of a vocab or shard directory.

    Returns:
        ``(tokens, tokenizer_json_text, normalizer)``: ``tokens[i]`` has id ``i``;
        ``normalizer`` is the tokenizer.json's BertNormalizer dict (``lowercase``,
        ``strip_accents``...).

    Raises:
        UserError: a file is missing or unreadable, the tokenizer is not a BERT WordPiece
            tokenizer, or its vocab differs from vocab.txt.
    """
    d = Path(vocab_dir)
    try:
        vocab_text = (d / "vocab.txt").read_bytes().decode("utf-8")
        tok_text = (d / "tokenizer.json").read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"vocab dir {d}: needs readable vocab.txt and tokenizer.json ({exc})"
        ) from None
    tokens = parse_vocab_txt(vocab_text)
    check_tokens(tokens, f"vocab dir {d}: vocab.txt")  # the shard contract's rules
    try:
        tok = json.loads(tok_text)
        vocab = tok["model"]["vocab"]
        kind = tok["model"]["type"]
        norm = tok.get("normalizer") or {}
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{d / 'tokenizer.json'}: not a tokenizer.json ({exc})") from None
    if kind != "WordPiece" or norm.get("type") != "BertNormalizer":
        raise UserError(f"{d / 'tokenizer.json'}: not a BERT WordPiece tokenizer")
    if vocab != {t: i for i, t in enumerate(tokens)}:
        raise UserError(f"vocab dir {d}: tokenizer.json and vocab.txt hold different vocabs")
    return tokens, tok_text, norm


def tokenizer_config_dict(normalizer: dict, max_length: int) -> dict:
    """``tokenizer_config.json`` for a BertTokenizer(Fast) matching the tokenizer.json."""
    return {
        "tokenizer_class": "BertTokenizer",  # transformers 5 has one class; 4.x picks Fast
        "do_lower_case": bool(normalizer.get("lowercase")),
        "strip_accents": normalizer.get("strip_accents"),
        "tokenize_chinese_chars": bool(normalizer.get("handle_chinese_chars", True)),
        "clean_up_tokenization_spaces": True,
        "model_max_length": int(max_length),
        **SPECIAL_TOKENS,
    }


def json_bytes(obj: dict) -> bytes:
    """Deterministic indented JSON (sorted keys, final newline)."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def save_safetensors(tensors: dict, path: Path, metadata: dict, shown: Path) -> None:
    """``safetensors.torch.save_file`` with its I/O failures raised as the :class:`OSError`
    they are (the library reports a full disk as ``SafetensorError: ... I/O error: No space
    left on device (os error 28)``), naming ``shown`` (the directory the user asked for, not
    the temp file), so the commands print one line such as "OUT: no space left on the device".
    """
    from safetensors import SafetensorError  # safetensors: only the paths that write weights
    from safetensors.torch import save_file  # (the same)

    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as exc:
        code = re.search(r"os error (\d+)|code: (\d+)", str(exc))
        if code is None:
            raise
        errno_ = int(code.group(1) or code.group(2))
        raise OSError(errno_, os.strerror(errno_), str(shown)) from None
