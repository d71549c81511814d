"""Write a pretraining checkpoint as a transformers BERT directory (the ``export`` command's work).

:func:`export` finds the checkpoint (:func:`resolve_checkpoint`) and its vocab
(:func:`resolve_vocab_dir`), converts with the pure functions of :mod:`pretrain.export`, and
publishes the directory atomically (:func:`ground.atomic.atomic_dir`). The layout and the vocab
search are described in :mod:`pretrain.export_cli`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ground.atomic import atomic_dir
from ground.errors import UserError
from pretrain import export as ex
from pretrain.checkpoint import latest_checkpoint, load_checkpoint
from pretrain.config import BertConfig

_VOCAB_CANDIDATES = ("vocab", "seq128", "seq512")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the latest checkpoint of a training output / checkpoints dir."""

    p = Path(path)
    if p.is_dir():
        found = latest_checkpoint(p / "checkpoints") or latest_checkpoint(p)
        if found is None:
            raise UserError(f"{p}: no ckpt-*.pt in it or in its checkpoints/ directory")
        return found
    return p


def resolve_vocab_dir(ckpt: Path, vocab_dir: str | None) -> Path:
    """``--vocab-dir``, else the first of RUN/vocab, RUN/seq128, RUN/seq512 holding vocab.txt
    and tokenizer.json, where RUN is two levels above ``ckpt`` (then one level above)."""
    if vocab_dir is not None:
        return Path(vocab_dir)
    tried = []
    # RUN for RUN/TRAIN/checkpoints/ckpt-N.pt first, then RUN/TRAIN (also RUN for RUN/TRAIN/ckpt)
    for run in reversed(ckpt.resolve().parents[1:3]):
        for name in _VOCAB_CANDIDATES:
            cand = run / name
            tried.append(str(cand))
            if (cand / "vocab.txt").is_file() and (cand / "tokenizer.json").is_file():
                return cand
    raise UserError(
        f"no vocab found for {ckpt} (looked in {', '.join(tried) or 'nothing'}): pass "
        "--vocab-dir DIR (RUN/vocab or the shard directory the model was trained on)"
    )


def export(ckpt_path, out_dir, vocab_dir=None, dtype="fp32", overwrite=False) -> Path:
    """Write the transformers directory for ``ckpt_path`` to ``out_dir``; return ``out_dir``.

    Raises:
        UserError: missing/corrupt checkpoint, no or mismatched vocab, existing OUT_DIR.
    """
    ckpt = resolve_checkpoint(ckpt_path)
    state = load_checkpoint(ckpt)
    config = state.get("config") or {}
    if not isinstance(config.get("model"), dict):
        raise UserError(f"checkpoint {ckpt}: no model config recorded")
    cfg = BertConfig.from_dict(config["model"])
    vdir = resolve_vocab_dir(ckpt, vocab_dir)
    tokens, tok_text, normalizer = ex.read_vocab_dir(vdir)
    if len(tokens) != cfg.vocab_size:
        raise UserError(
            f"vocab {vdir} has {len(tokens)} tokens but the model's vocab_size is "
            f"{cfg.vocab_size}: pass the --vocab-dir the model was trained with"
        )
    tensors = ex.hf_state_dict(state["model"], cfg, dtype)

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file: OUT_DIR must be a directory (or not exist yet)")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} exists and is not empty (pass --overwrite to replace it)")
    with atomic_dir(out) as tmp:
        ex.save_safetensors(tensors, tmp / "model.safetensors", {"format": "pt"}, out)
        files = {
            "config.json": ex.json_bytes(ex.hf_config_dict(cfg, dtype)),
            "vocab.txt": "".join(t + "\n" for t in tokens).encode("utf-8"),
            "tokenizer.json": tok_text.encode("utf-8"),
            "tokenizer_config.json": ex.json_bytes(
                ex.tokenizer_config_dict(normalizer, cfg.max_position_embeddings)
            ),
            "special_tokens_map.json": ex.json_bytes(ex.SPECIAL_TOKENS),
        }
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return out
