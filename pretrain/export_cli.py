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

from pretrain.export_dir import export


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpt", metavar="CKPT", help="checkpoint file or training output directory")
    p.add_argument("out_dir", metavar="OUT_DIR", help="directory to create")
    p.add_argument(
        "--vocab-dir", help="directory with vocab.txt + tokenizer.json (default: see above)"
    )
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32", help="weight dtype")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")


def run(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    out = export(args.ckpt, args.out_dir, args.vocab_dir, args.dtype, args.overwrite)
    print(f"export: wrote {out} (load with transformers' from_pretrained({str(out)!r}))")
    return 0
