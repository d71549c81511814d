"""Inputs the fine-tuning tests share: a tiny exported BERT and a small GLUE SST-2 directory.

The "pretrained" model is a freshly initialised ``BertForPreTraining`` (tiny preset: 2 layers,
hidden 128) with the bert-base-uncased vocabulary, written by ``bertprep export``'s own code
from a training checkpoint, so it is exactly what a user's export looks like.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from pretrain import export_dir
from pretrain.checkpoint import make_state, save_checkpoint
from pretrain.config import preset
from pretrain.model import BertForPreTraining

CFG = preset("tiny", vocab_size=30522)


def export_tiny(d: Path, corpus_dir: Path, seed: int = 1) -> Path:
    """``d/export``: an exported tiny model (weights drawn under ``seed``) with its tokenizer."""
    from tokenizers import BertWordPieceTokenizer

    vocab = corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"
    (d / "vocab").mkdir(parents=True)
    BertWordPieceTokenizer(str(vocab), lowercase=True).save(str(d / "vocab" / "tokenizer.json"))
    shutil.copyfile(vocab, d / "vocab" / "vocab.txt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForPreTraining(CFG)
    state = make_state(step=1, phase=1, config={"model": CFG.to_dict()}, model=model,
                       with_rng=False)  # fmt: skip
    save_checkpoint(d / "ckpt-00000001.pt", state)
    return export_dir.export(d / "ckpt-00000001.pt", d / "export", vocab_dir=d / "vocab")


def sst2_glue_dir(d: Path, corpus_dir: Path, n_train: int = 240, n_dev: int = 100) -> Path:
    """``d`` laid out as GLUE's SST-2 directory: the first ``n_train`` rows of the bundled train
    slice and the first ``n_dev`` of the dev file (real rows, header kept)."""
    sources = {
        "train.tsv": (corpus_dir / "testdata" / "glue" / "SST-2" / "train-first-240.tsv", n_train),
        "dev.tsv": (corpus_dir / "finetune" / "glue-sst2-dev.tsv", n_dev),
    }
    d.mkdir(parents=True, exist_ok=True)
    for name, (src, n) in sources.items():
        lines = src.read_text(encoding="utf-8").splitlines()
        (d / name).write_text("\n".join(lines[: n + 1]) + "\n", encoding="utf-8")
    return d
