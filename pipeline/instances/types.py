"""Instance records, their padded-array form (NVIDIA's HDF5 schema) and build statistics."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ground.errors import UserError
from ground.hashing import GOLDEN, mix64
from pipeline.instances.masking import VocabInfo, mask_block, num_to_predict

BLOCK = 4096  # instances masked together; bounds the block arrays (4096 x 512 x 8 B = 16 MiB)


@dataclass(frozen=True)
class InstanceConfig:
    """Build options of one phase (Google's flag names)."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    dupe_factor: int = 5
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    whole_word_mask: bool = False
    no_nsp: bool = False  # MLM only: [CLS] A [SEP], contiguous text up to the target
    unmasked: bool = False  # no masks stored: the loader masks dynamically
    classic: bool = False  # Google's exact behaviour, biases included

    def __post_init__(self):

        if self.max_seq_length < (4 if self.no_nsp else 5):
            raise UserError(f"max_seq_length {self.max_seq_length} is too small (>= 5 with NSP)")
        if self.max_predictions_per_seq < 1 or self.dupe_factor < 1:
            raise UserError("max_predictions_per_seq and dupe_factor must be >= 1")
        if not (0.0 < self.masked_lm_prob < 1.0) or not (0.0 <= self.short_seq_prob <= 1.0):
            raise UserError("masked_lm_prob must be in (0, 1) and short_seq_prob in [0, 1]")

    @property
    def max_num_tokens(self) -> int:
        """Token budget for the text: L minus [CLS] and one or two [SEP]."""
        return self.max_seq_length - (2 if self.no_nsp else 3)

    @property
    def phase(self) -> str:
        """Label mixed into every seed, so seq128 and seq512 draw different streams."""
        return f"seq{self.max_seq_length}"


@dataclass(frozen=True)
class InstancesSpec:
    """Everything the instances pipeline's DoFns need: built once by the stage's cli module.

    Attributes:
        run_dir: the run directory (local or ``gs://``); intermediates go to ``RUN/tmp``.
        configs: one :class:`InstanceConfig` per phase still to build (seq128, seq512).
        seed: the build seed (splits, groups, masking, shard shuffles derive from it).
        vocab_tokens: the vocab in id order (line i of vocab.txt is id i).
        lowercase, strip_accents: the tokenizer's normaliser settings (BERT's).
        validation_fraction: share of documents held out, by document id hash, in [0, 0.5).
        groups: instance groups over both splits (bounded memory per worker).
        num_shards: training shards per phase (``None``: sized automatically).
        num_val_shards: validation shards per phase.
        gzip_level: HDF5 gzip level of the shards, 0-9.
        relpaths: ``{path: relpath}`` seeding document ids of classic text inputs; empty for
            RUN/sentences.
        inputs_sha256: fingerprint of the input files' names and sizes.
        classic_input: the inputs are classic one-sentence-per-line text (``--input``), not
            RUN/sentences.
    """

    run_dir: str
    configs: tuple[InstanceConfig, ...]
    seed: int
    vocab_tokens: tuple[str, ...]
    lowercase: bool
    strip_accents: bool | None
    validation_fraction: float
    groups: int
    num_shards: int | None
    num_val_shards: int
    gzip_level: int
    relpaths: dict[str, str] = field(default_factory=dict)
    inputs_sha256: str = ""
    classic_input: bool = False


@dataclass(slots=True)
class Instance:
    """One training instance, unpadded.

    ``tokens`` int32 [n] (after masking), ``segment_ids`` int8 [n], ``masked_lm_positions`` /
    ``masked_lm_ids`` int32 [k] (positions sorted; ids are the original tokens). Provenance:
    ``doc_id`` (segment A's document), ``dupe``, ``index`` (order within that document pass),
    ``b_doc_id`` (segment B's document, "" without NSP), ``short_target``.
    """

    tokens: np.ndarray
    segment_ids: np.ndarray
    masked_lm_positions: np.ndarray
    masked_lm_ids: np.ndarray
    is_random_next: bool
    doc_id: str
    dupe: int
    index: int
    b_doc_id: str
    short_target: bool


@dataclass
class InstanceStats:
    """Counters of a build; every deviation and every skip is visible here."""

    documents: int = 0
    empty_documents: int = 0  # no non-empty sentence: nothing to build
    empty_sentences: int = 0  # tokenized to nothing, dropped
    long_sentences: int = 0  # one sentence longer than max_num_tokens: truncation cuts it
    instances: int = 0
    tokens: int = 0  # including [CLS]/[SEP]
    short_targets: int = 0  # instances built with a short target
    short_target_passes: int = 0  # classic only: document passes with a short target
    random_next: int = 0
    one_sentence_chunks: int = 0
    forced_random_next: int = 0  # classic: every one-sentence chunk; default: last sentences
    random_next_unavailable: int = 0  # coin said random but the group has one document
    random_next_same_doc: int = 0  # classic only: Google's 10 tries all hit the same document
    no_pair_skipped: int = 0  # a document's last sentence alone in a one-document group
    truncated: int = 0  # instances that lost tokens to truncate_seq_pair
    truncated_tokens: int = 0
    masked: int = 0
    masked_mask: int = 0  # replaced by [MASK]
    masked_random: int = 0  # replaced by a random token
    masked_keep: int = 0  # left unchanged

    def merge(self, other: InstanceStats) -> InstanceStats:
        """Field-wise sum (a new object)."""
        return InstanceStats(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


@dataclass
class InstanceBatch:
    """B instances as padded arrays. ``input_ids`` int32 [B, L], ``segment_ids`` int8 [B, L],
    ``lengths`` int32 [B], ``masked_lm_positions`` / ``masked_lm_ids`` int32 [B, P],
    ``masked_counts`` int32 [B], ``next_sentence_labels`` int8 [B] (1 = random next); provenance
    ``doc_ids`` / ``b_doc_ids`` (lists of str), ``dupes`` / ``indices`` int32 [B],
    ``short_targets`` bool [B]."""

    input_ids: np.ndarray
    segment_ids: np.ndarray
    lengths: np.ndarray
    masked_lm_positions: np.ndarray
    masked_lm_ids: np.ndarray
    masked_counts: np.ndarray
    next_sentence_labels: np.ndarray
    doc_ids: list[str] = field(default_factory=list)
    b_doc_ids: list[str] = field(default_factory=list)
    dupes: np.ndarray | None = None
    indices: np.ndarray | None = None
    short_targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def arrays(self) -> dict[str, np.ndarray]:
        """NVIDIA's HDF5 schema (input_mask derived from the lengths), zero padded."""
        seq = self.input_ids.shape[1]
        mask = (np.arange(seq)[None, :] < self.lengths[:, None]).astype(np.int8)
        return {
            "input_ids": self.input_ids,
            "input_mask": mask,
            "segment_ids": self.segment_ids,
            "masked_lm_positions": self.masked_lm_positions,
            "masked_lm_ids": self.masked_lm_ids,
            "next_sentence_labels": self.next_sentence_labels,
        }

    def instances(self) -> list[Instance]:
        """Unpadded :class:`Instance` views of the rows (they share this batch's memory)."""
        out = []
        for i, (n, k) in enumerate(zip(self.lengths.tolist(), self.masked_counts.tolist())):
            out.append(
                Instance(
                    self.input_ids[i, :n],
                    self.segment_ids[i, :n],
                    self.masked_lm_positions[i, :k],
                    self.masked_lm_ids[i, :k],
                    bool(self.next_sentence_labels[i]),
                    self.doc_ids[i],
                    int(self.dupes[i]),
                    int(self.indices[i]),
                    self.b_doc_ids[i],
                    bool(self.short_targets[i]),
                )
            )
        return out


def finish_block(raw: list[tuple], cfg: InstanceConfig, vocab: VocabInfo, source: np.ndarray):
    """Raw ranges from the structural pass -> (:class:`InstanceBatch`, :class:`InstanceStats`).

    ``raw`` items: ``(a0, a1, b0, b1, doc_id, dupe, index, short, random_next, b_doc_id,
    seed64)``: token ranges into ``source`` (int32 [T], the group's tokens), already truncated;
    ``b0 == b1 == -1`` without NSP. Gathers tokens, adds [CLS]/[SEP], pads and masks, all
    vectorised.
    """
    seq, p = cfg.max_seq_length, cfg.max_predictions_per_seq
    b = len(raw)
    cols = list(zip(*raw)) if raw else [()] * 11
    a0, a1, b0, b1 = (np.array(c, dtype=np.int64) for c in cols[:4])
    la = a1 - a0
    lb = np.maximum(b1 - b0, 0)
    nsp = not cfg.no_nsp
    lengths = la + 2 + (lb + 1 if nsp else 0)
    # Pieces per instance: [CLS], A, [SEP] (, B, [SEP]); [CLS]/[SEP] live at the end of src.
    src = np.concatenate([source, np.array([vocab.cls_id, vocab.sep_id], np.int32)])
    cls_at, sep_at = len(source), len(source) + 1
    one = np.ones(b, np.int64)
    if nsp:
        starts = np.stack([cls_at * one, a0, sep_at * one, b0, sep_at * one], axis=1)
        sizes = np.stack([one, la, one, lb, one], axis=1)
    else:
        starts = np.stack([cls_at * one, a0, sep_at * one], axis=1)
        sizes = np.stack([one, la, one], axis=1)
    starts, sizes = starts.ravel(), sizes.ravel()
    ends = np.cumsum(sizes)
    gather = np.arange(int(ends[-1]) if b else 0) + np.repeat(starts - (ends - sizes), sizes)
    ids = np.zeros((b, seq), np.int32)
    pos = np.arange(seq)[None, :]
    inside = pos < lengths[:, None]
    ids[inside] = src[gather]
    segs = (inside & (pos >= la[:, None] + 2)).astype(np.int8)
    labels = np.array(cols[8], dtype=np.int8)
    short = np.array(cols[7], dtype=bool)
    stats = InstanceStats(
        instances=b,
        tokens=int(lengths.sum()),
        short_targets=int(short.sum()),
        random_next=int(labels.sum()),
    )
    mpos = np.zeros((b, p), np.int32)
    mids = np.zeros((b, p), np.int32)
    counts = np.zeros(b, np.int32)
    index = np.array(cols[6], dtype=np.int64)
    if b and not cfg.unmasked:
        cand = inside & (pos >= 1) & (pos < lengths[:, None] - 1) & (pos != la[:, None] + 1)
        k = np.minimum(num_to_predict(lengths, cfg.masked_lm_prob, p), cand.sum(axis=1))
        s64 = np.array(cols[10], dtype=np.uint64)
        seeds = mix64(s64 ^ mix64((index.astype(np.uint64) + np.uint64(1)) * GOLDEN))
        res = mask_block(ids, cand, seeds, k, p, vocab, cfg.whole_word_mask, cfg.classic)
        ids, mpos, mids, counts = res.tokens, res.positions, res.labels, res.counts
        kinds = res.kinds[res.kinds >= 0]
        stats.masked = int(kinds.size)
        stats.masked_mask = int((kinds == 0).sum())
        stats.masked_random = int((kinds == 1).sum())
        stats.masked_keep = int((kinds == 2).sum())
    batch = InstanceBatch(
        ids,
        segs,
        lengths.astype(np.int32),
        mpos,
        mids,
        counts.astype(np.int32),
        labels,
        list(cols[4]),
        list(cols[9]),
        np.array(cols[5], dtype=np.int32),
        index.astype(np.int32),
        short,
    )
    return batch, stats
