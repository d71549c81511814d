"""Import a transformers BERT directory as a weights-only checkpoint (the ``import`` command).

:func:`import_hf` reads ``config.json`` and the weights (safetensors, or ``pytorch_model.bin``
with ``torch.load(weights_only=True)``), maps old names, checks an extended vocab, and writes a
checkpoint plus its model config beside it (:func:`config_path`). What is accepted and why is
in :mod:`pretrain.import_cli`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ground.errors import UserError
from pretrain.checkpoint import make_state, save_checkpoint
from pretrain.config import BertConfig
from pretrain.export import from_hf_state_dict
from pretrain.model import BertForPreTraining

_GENERIC_KEYS = frozenset(
    {
        "id2label",
        "label2id",
        "problem_type",
        "finetuning_task",
        "output_attentions",
        "output_hidden_states",
        "return_dict",
        "torchscript",
        "tokenizer_class",
        "chunk_size_feed_forward",
        "output_past",
    }
)
_UNUSED = re.compile(r"\[unused\d+\]")


def read_hf_config(hf_dir: Path):
    """Our BertConfig from ``HF_DIR/config.json`` (generic HF keys ignored)."""

    path = hf_dir / "config.json"
    if not path.is_file():
        raise UserError(f"{hf_dir}: no config.json (not a transformers model directory)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    if data.get("model_type", "bert") != "bert":
        raise UserError(f"{path}: model_type {data['model_type']!r}, expected 'bert'")
    return BertConfig.from_dict({k: v for k, v in data.items() if k not in _GENERIC_KEYS})


def read_hf_weights(hf_dir: Path) -> dict:
    """Tensors of ``model.safetensors`` or else ``pytorch_model.bin`` (``weights_only``)."""
    import torch  # torch (~2 s): after flags parse, so --help and flag errors are instant

    st, binf = hf_dir / "model.safetensors", hf_dir / "pytorch_model.bin"
    try:
        if st.is_file():
            from safetensors.torch import (
                load_file,  # safetensors: only the paths that read or write weights
            )

            return load_file(str(st))
        if binf.is_file():
            sd = torch.load(binf, map_location="cpu", weights_only=True)
            if not isinstance(sd, dict):
                raise UserError(f"{binf}: not a state dict")
            return sd
    except UserError:
        raise
    except Exception as exc:  # safetensors/torch raise many types for a corrupt file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{hf_dir}: cannot read the weights ({first})") from None
    if list(hf_dir.glob("*.index.json")):
        raise UserError(f"{hf_dir}: sharded weights are not supported; merge them first")
    raise UserError(f"{hf_dir}: no model.safetensors or pytorch_model.bin")


def _read_tokens(path: Path) -> list[str]:
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read vocab {path} ({exc})") from None
    if lines and lines[-1] == "":
        lines.pop()
    return [t[:-1] if t.endswith("\r") else t for t in lines]


def check_vocab(hf_dir: Path, vocab_size: int, extended: str | None) -> int:
    """Check HF_DIR/vocab.txt (if present) and ``--extend-vocab``; return the new-term count.

    Raises:
        UserError: a vocab whose size differs from ``vocab_size``, or an extended vocab that
            changes a token other than an ``[unusedN]`` slot.
    """
    base_path = hf_dir / "vocab.txt"
    base = _read_tokens(base_path) if base_path.is_file() else None
    ext = _read_tokens(Path(extended)) if extended is not None else None
    for path, toks in ((base_path, base), (extended, ext)):
        if toks is not None and len(toks) != vocab_size:
            raise UserError(f"vocab {path} has {len(toks)} tokens, the model has {vocab_size}")
    if ext is None:
        return 0
    if base is None:
        raise UserError(f"--extend-vocab needs {base_path} to compare against")
    changed = [i for i, (a, b) in enumerate(zip(base, ext)) if a != b]
    moved = [i for i in changed if not _UNUSED.fullmatch(base[i])]
    if moved:
        i = moved[0]
        raise UserError(
            f"{extended}: id {i} is {ext[i]!r} but {base[i]!r} in {base_path}; an extended "
            "vocab may only replace [unusedN] slots (use `bertprep vocab --extend`)"
        )
    return len(changed)


def import_hf(hf_dir, out_ckpt, extend_vocab: str | None = None, seed: int = 0) -> dict:
    """Convert ``hf_dir`` to a checkpoint at ``out_ckpt``; returns a summary dict."""
    import torch  # torch (~2 s): after flags parse, so --help and flag errors are instant

    hf_dir, out = Path(hf_dir), Path(out_ckpt)
    if not hf_dir.is_dir():
        raise UserError(f"{hf_dir}: no such directory")
    cfg = read_hf_config(hf_dir)
    new_terms = check_vocab(hf_dir, cfg.vocab_size, extend_vocab)
    hf = read_hf_weights(hf_dir)
    torch.manual_seed(seed)
    model = BertForPreTraining(cfg)
    sd, initialised = from_hf_state_dict(hf, cfg, model.state_dict())
    model.load_state_dict(sd)  # strict: every key and shape checked above
    info = {"source": str(hf_dir), "initialised": initialised, "new_terms": new_terms}
    state = make_state(
        step=0,
        phase=1,
        config={"model": cfg.to_dict(), "import": info},
        model=model,
        with_rng=False,
    )
    save_checkpoint(out, state)
    cfg.to_json(config_path(out))
    return info


def config_path(out_ckpt: str | Path) -> Path:
    """``X.pt`` -> ``X.config.json`` (the model config written beside an imported checkpoint)."""
    out = Path(out_ckpt)
    stem = out.name[:-3] if out.name.endswith(".pt") else out.name
    return out.with_name(stem + ".config.json")
