"""Pack decoded instances into the schema's padded arrays (the inverse of ``decode_instance``).

The instance builder produces one variable-length record per instance; a shard writer packs a
shard's records into fixed [N, L] / [N, P] arrays with zero padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sharding import schema


def pack_instances(
    instances: Sequence,
    seq_length: int,
    max_predictions: int,
    masked: bool = True,
) -> dict[str, np.ndarray]:
    """Schema arrays for ``instances``.

    Args:
        instances: each is a tuple ``(input_ids, segment_ids, masked_positions,
            masked_labels, next_sentence_label)`` or has those attributes (or the pipeline's
            ``tokens, segment_ids, masked_lm_positions, masked_lm_ids, is_random_next``):
            1-D int sequences of the real tokens (length <= ``seq_length``), the segment of
            each token, sorted masked positions and their original ids (<=
            ``max_predictions``; ignored when ``masked`` is false), and the NSP label
            (1 = random next).
        seq_length: L; max_predictions: P.
    Returns:
        dict key -> array as :func:`sharding.schema.empty_arrays`, filled row by row.
    Raises:
        schema.SchemaError: an instance longer than L or with more than P masked positions.
    """
    out = schema.empty_arrays(len(instances), seq_length, max_predictions, masked)
    for row, inst in enumerate(instances):
        ids, segs, positions, labels, nsp = _fields(inst)
        n = len(ids)
        if n > seq_length or len(segs) != n:
            raise schema.SchemaError(f"instance {row}: {n} tokens for seq length {seq_length}")
        out[schema.INPUT_IDS][row, :n] = ids
        out[schema.INPUT_MASK][row, :n] = 1
        out[schema.SEGMENT_IDS][row, :n] = segs
        out[schema.NEXT_SENTENCE_LABELS][row] = nsp
        if masked:
            k = len(positions)
            if k > max_predictions or len(labels) != k:
                raise schema.SchemaError(
                    f"instance {row}: {k} masked positions for max predictions {max_predictions}"
                )
            out[schema.MASKED_LM_POSITIONS][row, :k] = positions
            out[schema.MASKED_LM_IDS][row, :k] = labels
    return out


def _fields(inst) -> tuple:
    if hasattr(inst, "tokens"):  # pipeline.instances.types.Instance's names
        return (
            inst.tokens,
            inst.segment_ids,
            inst.masked_lm_positions,
            inst.masked_lm_ids,
            int(inst.is_random_next),
        )
    if hasattr(inst, "input_ids"):
        return (
            inst.input_ids,
            inst.segment_ids,
            inst.masked_positions,
            inst.masked_labels,
            inst.next_sentence_label,
        )
    return tuple(inst)
