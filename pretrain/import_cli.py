"""Import a transformers BERT directory as a checkpoint to continue pretraining from.

  bertprep import HF_DIR RUN/bert-base.pt [--extend-vocab RUN/vocab/vocab.txt]
  bertprep train --config RUN/bert-base.config.json --init-from RUN/bert-base.pt --data ...

HF_DIR holds config.json and model.safetensors or pytorch_model.bin (read with
torch.load(weights_only=True); no pickled code runs), e.g. bert-base-uncased or a directory
written by `bertprep export`. OUT_CKPT is a weights-only checkpoint (no optimizer state, step 0,
vocabulary rows padded as in training); the model config is also written beside it as
OUT_CKPT-without-.pt + `.config.json`, to pass to `bertprep train --config`.

Older checkpoints with LayerNorm gamma/beta names, a stored decoder weight and a
position_ids buffer load; a bare BertModel (no pretraining heads) loads with freshly
initialised cls.* heads (listed on stdout).

Domain vocabulary ("further pre-training"): build the shards with the vocab that
`bertprep vocab --extend HF_DIR/vocab.txt --add-terms N` writes, and pass that vocab.txt as
--extend-vocab. Its size must equal the model's and it may differ from HF_DIR/vocab.txt only in
[unusedN] slots, so every existing token keeps its id and its embedding. The rows of the new
terms are kept as they are: Google's [unusedN] rows were never the target or input of any
pretraining example, so they hold (weight-decayed) initial values, about what a fresh N(0,
0.02) row would be; continued pretraining learns them.
"""

from __future__ import annotations

import argparse

from pretrain.import_hf import config_path, import_hf


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("hf_dir", metavar="HF_DIR", help="transformers BERT directory")
    p.add_argument("out_ckpt", metavar="OUT_CKPT", help="checkpoint file to write (.pt)")
    p.add_argument(
        "--extend-vocab",
        metavar="VOCAB_TXT",
        help="vocab.txt from `bertprep vocab --extend` to check against HF_DIR/vocab.txt",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for heads absent from HF_DIR")


def run(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    info = import_hf(args.hf_dir, args.out_ckpt, args.extend_vocab, args.seed)
    if info["initialised"]:
        print(
            f"import: not in {args.hf_dir}, freshly initialised: {', '.join(info['initialised'])}"
        )
    if info["new_terms"]:
        print(f"import: {info['new_terms']} [unusedN] slots hold new terms (rows kept as they are)")
    print(
        f"import: wrote {args.out_ckpt}; continue with: bertprep train --config "
        f"{config_path(args.out_ckpt)} --init-from {args.out_ckpt} --data SHARDS --output DIR"
    )
    return 0
