"""Export a pretraining checkpoint as a transformers BERT directory (weights only).

  bertprep export RUN/train/checkpoints/ckpt-00001000.pt RUN/export
  bertprep export RUN/train RUN/export --vocab-dir RUN/seq128 --dtype bf16

OUT_DIR gets config.json (BertForPreTraining), model.safetensors, vocab.txt, tokenizer.json,
tokenizer_config.json and special_tokens_map.json; then
``transformers.BertForSequenceClassification.from_pretrained(OUT_DIR, num_labels=2)`` and
``AutoTokenizer.from_pretrained(OUT_DIR)`` load it. Padded vocabulary rows are dropped; the
optimizer state is not exported.

CKPT is a checkpoint file, or a training output directory (its latest checkpoint is used).
A checkpoint does not record its vocab, so the vocab comes from --vocab-dir (a directory with
vocab.txt + tokenizer.json: RUN/vocab or a shard directory such as RUN/seq128). Without it, the
standard run layout is searched: for RUN/TRAIN/checkpoints/ckpt-N.pt, RUN/vocab, then
RUN/seq128 and RUN/seq512, then the same names in RUN/TRAIN. The vocab size must equal the
model's.

The directory is written to a temp directory beside OUT_DIR and renamed into place; an existing
non-empty OUT_DIR is refused unless --overwrite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from ground.errors import UserError

_VOCAB_CANDIDATES = ("vocab", "seq128", "seq512")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpt", metavar="CKPT", help="checkpoint file or training output directory")
    p.add_argument("out_dir", metavar="OUT_DIR", help="directory to create")
    p.add_argument(
        "--vocab-dir", help="directory with vocab.txt + tokenizer.json (default: see above)"
    )
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32", help="weight dtype")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the latest checkpoint of a training output / checkpoints dir."""
    from pretrain.checkpoint import latest_checkpoint

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
    from safetensors.torch import save_file

    from pretrain import export as ex
    from pretrain.checkpoint import load_checkpoint
    from pretrain.config import BertConfig

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
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise UserError(f"{out} exists and is not empty (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
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
        for f in tmp.iterdir():  # durable before the rename makes the directory visible
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        tmp.chmod(0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def run(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    out = export(args.ckpt, args.out_dir, args.vocab_dir, args.dtype, args.overwrite)
    print(f"export: wrote {out} (load with transformers' from_pretrained({str(out)!r}))")
    return 0
