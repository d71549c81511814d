"""Summarise a shard directory: counts, lengths, NSP balance, masking, decoded examples.

Everything is computed from the stored arrays: the masking split is estimated per masked
position as ``[MASK]`` (stored id is ``[MASK]``), unchanged (stored id = label) or random
(anything else; a random draw that hits the label itself counts as unchanged, which biases
"unchanged" up by about 10% / vocab size).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sharding import schema
from sharding.reader import ShardSet, decode_instance
from sharding.vocab import Vocab, load_vocab

HISTOGRAM_BARS = 16  # bars of the length and masked-count histograms (about)


def _histogram(values: np.ndarray, width: int, start: int = 0) -> dict[str, int]:
    """Counts per bin ``[lo, lo + width)`` with ``lo = start + k * width``, keyed ``"lo-hi"``
    (or ``"lo"`` when ``width`` is 1); empty bins are left out."""
    if values.size == 0:
        return {}
    lows = start + ((values - start) // width) * width
    keys, counts = np.unique(lows, return_counts=True)
    label = (lambda lo: str(lo)) if width == 1 else (lambda lo: f"{lo}-{lo + width - 1}")
    return {label(int(k)): int(c) for k, c in zip(keys, counts)}


def _width(span: int) -> int:
    return max(1, -(-span // HISTOGRAM_BARS))


def summarize_split(readers, vocab: Vocab | None, seq_length: int, max_pred: int) -> dict[str, Any]:
    """Statistics over the shards of one split (each shard read whole, one at a time).

    Length bins are ``seq_length / 16`` tokens wide starting at 1 (so L is in the last bin);
    masked-count bins ``(max_pred + 1) / 16`` wide starting at 0.
    """
    lengths, n_masked, nsp = [], [], []
    as_mask = unchanged = total_masked = 0
    for reader in readers:
        arrays = reader.read_all()
        lengths.append(arrays[schema.INPUT_MASK].astype(np.int64).sum(1))
        nsp.append(arrays[schema.NEXT_SENTENCE_LABELS].astype(np.int64))
        if schema.MASKED_LM_POSITIONS in arrays:
            pos = arrays[schema.MASKED_LM_POSITIONS].astype(np.int64)
            zero = pos == 0
            n = np.where(zero.any(1), zero.argmax(1), pos.shape[1])
            n_masked.append(n)
            used = np.arange(pos.shape[1])[None, :] < n[:, None]
            rr, cc = np.nonzero(used)
            stored = arrays[schema.INPUT_IDS][
                rr, pos[rr, cc].clip(0, arrays[schema.INPUT_IDS].shape[1] - 1)
            ]
            labels = arrays[schema.MASKED_LM_IDS][rr, cc]
            total_masked += rr.size
            unchanged += int((stored == labels).sum())
            if vocab is not None:
                as_mask += int((stored == vocab.mask).sum())
    length = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    labels = np.concatenate(nsp) if nsp else np.zeros(0, np.int64)
    out: dict[str, Any] = {
        "shards": len(readers),
        "instances": int(length.size),
        "counts_per_shard": [len(r) for r in readers],
        "mean_length": float(length.mean()) if length.size else 0.0,
        "length_histogram": _histogram(length, _width(seq_length), start=1),
        "nsp_random_fraction": float(labels.mean()) if labels.size else 0.0,
    }
    if n_masked:
        masked = np.concatenate(n_masked)
        out["mean_masked"] = float(masked.mean()) if masked.size else 0.0
        out["masked_count_histogram"] = _histogram(masked, _width(max_pred + 1))
        if total_masked and vocab is not None:
            out["mask_split"] = {
                "mask": as_mask / total_masked,
                "random": (total_masked - as_mask - unchanged) / total_masked,
                "unchanged": unchanged / total_masked,
            }
    return out


def example_lines(readers, vocab: Vocab, count: int) -> list[str]:
    """Decoded text of the first ``count`` instances of the first shard (A/B, masks, label)."""
    if not readers or count <= 0:
        return []
    arrays = readers[0].read_rows(0, count)
    lines = []
    for i in range(len(arrays[schema.INPUT_IDS])):
        inst = decode_instance(arrays, i)
        lines.append(
            f"--- {readers[0].path.name} row {i}: next_sentence_label={inst.next_sentence_label}"
        )
        lines.append("stored:   " + vocab.decode(inst.input_ids))
        if inst.masked_positions.size:
            lines.append("original: " + vocab.decode(inst.original_ids))
            pairs = [
                f"{p}:{vocab.tokens[t]}"
                for p, t in zip(inst.masked_positions.tolist(), inst.masked_labels.tolist())
            ]
            lines.append("masked:   " + " ".join(pairs))
    return lines


def inspect_dir(
    directory: str | os.PathLike, examples: int = 3, vocab_path: str | None = None
) -> dict[str, Any]:
    """Summary dict of a shard directory (see :func:`format_summary` for the printed form)."""
    shards = ShardSet.open(directory)
    for reader in shards.training + shards.validation:
        reader.verify()  # statistics of a corrupt file would be wrong without a word
    vocab_file = Path(vocab_path) if vocab_path else Path(directory) / "vocab.txt"
    vocab = load_vocab(vocab_file) if vocab_file.is_file() else None
    summary: dict[str, Any] = {
        "directory": str(directory),
        "seq_length": shards.seq_length,
        "max_predictions": shards.max_predictions,
        "masked": shards.masked,
        "nsp": shards.nsp,
        "vocab_size": shards.vocab_size,
        "training": summarize_split(
            shards.training, vocab, shards.seq_length, shards.max_predictions
        ),
        "validation": summarize_split(
            shards.validation, vocab, shards.seq_length, shards.max_predictions
        ),
    }
    summary["examples"] = example_lines(shards.training, vocab, examples) if vocab else []
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of :func:`inspect_dir`'s summary."""
    lines = [
        f"{summary['directory']}: seq length {summary['seq_length']}, max predictions "
        f"{summary['max_predictions']}, masked {summary['masked']}, nsp {summary['nsp']}, "
        f"vocab size {summary['vocab_size']}"
    ]
    for split in (schema.TRAINING, schema.VALIDATION):
        s = summary[split]
        counts = s["counts_per_shard"]
        spread = f"{min(counts)}..{max(counts)}" if counts else "-"
        lines.append(
            f"{split}: {s['shards']} shards, {s['instances']} instances ({spread} per shard), "
            f"mean length {s['mean_length']:.1f}, NSP random {s['nsp_random_fraction']:.3f}"
        )
        if "mean_masked" in s:
            lines.append(f"  mean masked per instance {s['mean_masked']:.2f}")
        if "mask_split" in s:
            m = s["mask_split"]
            lines.append(
                f"  masking: [MASK] {m['mask']:.3f}, random {m['random']:.3f}, "
                f"unchanged {m['unchanged']:.3f}"
            )
        if s["length_histogram"]:
            lines.append(
                "  lengths: " + ", ".join(f"{k}: {v}" for k, v in s["length_histogram"].items())
            )
        if s.get("masked_count_histogram"):
            hist = s["masked_count_histogram"]
            lines.append("  masked counts: " + ", ".join(f"{k}: {v}" for k, v in hist.items()))
    lines += summary["examples"]
    return "\n".join(lines)
