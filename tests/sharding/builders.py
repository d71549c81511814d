"""Test-side instance builder, independent of ``sharding``: real book text, BERT ids, masks.

Tokens come from a bundled Gutenberg book through HF ``tokenizers`` with the real
bert-base-uncased vocab; instances follow BERT's layout (``[CLS] A [SEP] B [SEP]``, 15%
masking, 80/10/10) with a plain ``random.Random``. Arrays are packed with plain loops here so
the tests compare ``sharding``'s packer, writer, reader and decoder against independent code.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VOCAB = ROOT / "corpus" / "vocab" / "bert-base-uncased-vocab.txt"
BOOK = ROOT / "corpus" / "books" / "1661.txt"
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103  # bert-base-uncased (checked in a test)
VOCAB_SIZE = 30522


@dataclass
class Rec:
    """One instance as the builder made it (real tokens only)."""

    input_ids: list[int]
    segment_ids: list[int]
    masked_positions: list[int]
    masked_labels: list[int]
    next_sentence_label: int


@functools.lru_cache(maxsize=1)
def book_documents() -> tuple[tuple[int, ...], ...]:
    """Token ids of the book's body, cut into documents of 40 paragraphs."""
    from tokenizers import BertWordPieceTokenizer

    lines = BOOK.read_text(encoding="ascii").splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("*** START OF"))
    end = next(i for i, ln in enumerate(lines) if ln.startswith("*** END OF"))
    paras, cur = [], []
    for line in lines[start + 1 : end]:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    tok = BertWordPieceTokenizer(str(VOCAB), lowercase=True)
    encs = tok.encode_batch(paras, add_special_tokens=False)
    docs = []
    for i in range(0, len(encs), 40):
        ids = [t for e in encs[i : i + 40] for t in e.ids]
        if len(ids) > 600:
            docs.append(tuple(ids))
    return tuple(docs)


def build(
    count: int,
    seq_length: int = 128,
    max_pred: int = 20,
    seed: int = 0,
    nsp: bool = True,
    masked: bool = True,
) -> list[Rec]:
    """``count`` instances in BERT's layout (see module docstring)."""
    rng = random.Random(seed)
    docs = book_documents()
    out = []
    for _ in range(count):
        target = seq_length - (3 if nsp else 2)
        if rng.random() < 0.1:
            target = rng.randint(2, target)
        d = rng.randrange(len(docs))
        doc = docs[d]
        if nsp:
            a_len = rng.randint(1, max(1, target - 1))
            b_len = max(1, target - a_len)
            start = rng.randrange(len(doc) - target - 1)
            a = list(doc[start : start + a_len])
            label = int(rng.random() < 0.5)
            if label:
                other = docs[(d + rng.randrange(1, len(docs))) % len(docs)]
                s2 = rng.randrange(len(other) - b_len)
                b = list(other[s2 : s2 + b_len])
            else:
                b = list(doc[start + a_len : start + a_len + b_len])
            ids = [CLS] + a + [SEP] + b + [SEP]
            segs = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        else:
            start = rng.randrange(len(doc) - target)
            a = list(doc[start : start + target])
            ids, segs, label = [CLS] + a + [SEP], [0] * (len(a) + 2), 0
        positions, labels = [], []
        if masked:
            cands = [i for i, t in enumerate(ids) if t not in (CLS, SEP)]
            k = min(max_pred, max(1, round(len(ids) * 0.15)))
            positions = sorted(rng.sample(cands, k))
            labels = [ids[p] for p in positions]
            for p in positions:
                r = rng.random()
                if r < 0.8:
                    ids[p] = MASK
                elif r < 0.9:
                    ids[p] = rng.randrange(999, VOCAB_SIZE)
        out.append(Rec(ids, segs, positions, labels, label))
    return out


def pack(recs: list[Rec], seq_length: int, max_pred: int, masked: bool = True) -> dict:
    """Independent packer: plain loops into NVIDIA's dtypes and shapes."""
    n = len(recs)
    a = {
        "input_ids": np.zeros((n, seq_length), np.int32),
        "input_mask": np.zeros((n, seq_length), np.int8),
        "segment_ids": np.zeros((n, seq_length), np.int8),
        "next_sentence_labels": np.zeros((n,), np.int8),
    }
    if masked:
        a["masked_lm_positions"] = np.zeros((n, max_pred), np.int32)
        a["masked_lm_ids"] = np.zeros((n, max_pred), np.int32)
    for r, rec in enumerate(recs):
        for j, (t, s) in enumerate(zip(rec.input_ids, rec.segment_ids)):
            a["input_ids"][r, j] = t
            a["input_mask"][r, j] = 1
            a["segment_ids"][r, j] = s
        for j, (p, lab) in enumerate(zip(rec.masked_positions, rec.masked_labels)):
            a["masked_lm_positions"][r, j] = p
            a["masked_lm_ids"][r, j] = lab
        a["next_sentence_labels"][r] = rec.next_sentence_label
    return a


def make_dir(
    directory: Path,
    *,
    train_shards: int = 3,
    val_shards: int = 1,
    per_shard: int = 40,
    seq_length: int = 128,
    max_pred: int = 20,
    nsp: bool = True,
    masked: bool = True,
    seed: int = 0,
    manifest: bool = True,
) -> tuple[Path, list[list[Rec]]]:
    """A complete shard dir written with ``sharding``: shards, vocab.txt, tokenizer.json and
    (optionally) manifest.json. Returns the dir and the records of each shard, training first.
    """
    import shutil

    from tokenizers import BertWordPieceTokenizer

    from sharding import manifest as mf
    from sharding.schema import TRAINING, VALIDATION, shard_name
    from sharding.writer import write_shard

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(VOCAB, directory / "vocab.txt")
    BertWordPieceTokenizer(str(VOCAB), lowercase=True).save(str(directory / "tokenizer.json"))
    written, all_recs = [], []
    plan = [(TRAINING, i) for i in range(train_shards)] + [
        (VALIDATION, i) for i in range(val_shards)
    ]
    for k, (split, index) in enumerate(plan):
        recs = build(per_shard, seq_length, max_pred, seed=seed * 1000 + k, nsp=nsp, masked=masked)
        info = write_shard(
            directory / shard_name(split, index), pack(recs, seq_length, max_pred, masked), nsp=nsp
        )
        written.append((split, info))
        all_recs.append(recs)
    if manifest:
        m = mf.build_manifest(
            seq_length=seq_length,
            max_predictions=max_pred,
            masked=masked,
            nsp=nsp,
            shards=written,
            vocab=mf.vocab_info(directory / "vocab.txt"),
            seed=seed,
            config={"max_seq_length": seq_length, "dupe_factor": 5},
            report={"instances": sum(len(r) for r in all_recs)},
            tokenizer=mf.file_info(directory / "tokenizer.json"),
        )
        mf.write_manifest(directory, m)
    return directory, all_recs
