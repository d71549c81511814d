"""Training and validation batches from a shard directory, NVIDIA-style, with exact resume.

One whole shard is in memory at a time (optionally the next one loads in a background thread);
which rows each rank batches is the pure plan of :mod:`pretrain.binning`. A batch is a dict of
CPU tensors::

    input_ids            int64 [B, T]   T = L, or the longest row rounded up to 8 (<= L)
    attention_mask       int64 [B, T]   1 on real tokens
    token_type_ids       int64 [B, T]
    masked_lm_positions  int64 [B, P]   sorted, 0 on padding slots (all < T)
    masked_lm_labels     int64 [B, P]   original ids, -100 on padding slots
    next_sentence_label  int64 [B]
    sample_ids           int64 [B]      shard index * 2**32 + row (+ 2**62 for validation)

:class:`PretrainLoader` iterates forever over epochs; its :meth:`~PretrainLoader.state_dict`
(epoch, position in the epoch's shard order, micro-batches consumed there) is the same on every
rank, so the trainer saves rank 0's and every rank loads it. Unmasked shards are masked on the
fly by :mod:`pretrain.collate` (mask = function of seed, epoch, sample id).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from ground.errors import UserError
from pretrain import binning, collate
from sharding import schema
from sharding.reader import ShardReader, ShardSet

ROW_BITS = 32  # sample id = shard index << 32 | row
VALIDATION_ID_BASE = 1 << 62  # validation ids never equal training ids
STATE_VERSION = 1


def check_compatible(shards: ShardSet, model_vocab_size: int, max_positions: int | None = None):
    """:class:`UserError` when the shards were made for another vocabulary (size differs from
    the model's unpadded ``vocab_size``) or are longer than ``max_positions``."""
    if shards.vocab_size is not None and shards.vocab_size != model_vocab_size:
        raise UserError(
            f"{shards.directory}: shards use a vocabulary of {shards.vocab_size} tokens but the "
            f"model has vocab_size {model_vocab_size}; build shards with the model's vocab.txt "
            "or set the model's vocab size to match"
        )
    if max_positions is not None and shards.seq_length > max_positions:
        raise UserError(
            f"{shards.directory}: sequences of {shards.seq_length} tokens exceed the model's "
            f"{max_positions} positions"
        )


def load_shard(reader: ShardReader, vocab_size: int | None = None) -> dict[str, np.ndarray]:
    """A whole shard (``read_all``) plus ``lengths`` int64 [N] = row sums of ``input_mask``.

    With ``vocab_size``, :class:`UserError` if a token id is outside ``[0, vocab_size)`` (the
    check :func:`check_compatible` cannot make for foreign shards without a vocab size).
    """
    reader.verify()  # its manifest sha256, once, before its first use (a whole-file read)
    arrays = reader.read_all()
    if vocab_size is not None:
        for key in (schema.INPUT_IDS, schema.MASKED_LM_IDS):
            ids = arrays.get(key)
            if ids is None or not ids.size:
                continue
            bad = int(ids.max()) if ids.max() >= vocab_size else int(ids.min())
            if not 0 <= bad < vocab_size:
                raise UserError(
                    f"shard {reader.path.name}: {key} holds id {bad} outside the "
                    f"model's vocabulary of {vocab_size}"
                )
    arrays["lengths"] = arrays[schema.INPUT_MASK].sum(axis=1, dtype=np.int64)
    return arrays


def _open(shards: ShardSet | str | os.PathLike) -> ShardSet:
    return shards if isinstance(shards, ShardSet) else ShardSet.open(shards)


def _check_ranks(world_size: int, rank: int, micro_batch: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise UserError(f"rank {rank} is not in [0, world_size={world_size})")
    if micro_batch < 1:
        raise UserError(f"micro batch must be >= 1, got {micro_batch}")


class PretrainLoader:
    """Training batches for one rank, forever (epoch after epoch), resumable exactly.

    Rows are taken in blocks (see :mod:`pretrain.binning`) of ``world_size * micro_batch`` rows
    by default: one micro-step of all ranks, one shard, one bin; accumulation may then span
    shards, which large global batches need (NVIDIA's phase 1 global batch 65536 exceeds a
    shard). Passing ``global_batch`` (a multiple of ``world_size * micro_batch``) makes blocks
    whole global batches instead: every optimizer step then comes from one shard and one bin,
    and any world size with the same global batch sees the same samples per step (what a
    DDP-vs-single-process test compares); every shard must then hold >= ``global_batch`` rows.

    ``vocab_size`` (the model's) checks every loaded shard's ids against it. ``bin_size`` turns
    on length binning (implies padding to the longest row); ``pad_to_longest`` alone trims
    every batch to its longest row rounded up to 8. Every rank reads every shard whole and keeps
    its share of rows (simple, and equal batch counts by construction; the cost is reading
    ``world_size`` times the data, overlapped by ``prefetch``). Only one iterator may be live
    at a time; ``epoch``, ``shard_pos`` and ``offset`` give the position for logging.
    """

    def __init__(
        self,
        shards: ShardSet | str | os.PathLike,
        micro_batch: int,
        *,
        seed: int = 0,
        world_size: int = 1,
        rank: int = 0,
        global_batch: int | None = None,
        bin_size: int | None = None,
        pad_to_longest: bool = False,
        prefetch: bool = True,
        max_predictions: int | None = None,
        vocab_size: int | None = None,
        mask_prob: float = collate.MASK_PROB,
    ):
        self.shards = _open(shards)
        _check_ranks(world_size, rank, micro_batch)
        if seed < 0:
            raise UserError(f"seed must be >= 0, got {seed}")
        step = world_size * micro_batch
        self.global_batch = global_batch or step
        if self.global_batch % step:
            raise UserError(
                f"global batch {self.global_batch} is not a multiple of world size {world_size} "
                f"x micro batch {micro_batch}"
            )
        if bin_size is not None and bin_size < 1:
            raise UserError(f"bin size must be >= 1, got {bin_size}")
        self.readers = self.shards.training
        if not self.readers:
            raise UserError(f"{self.shards.directory}: no training shards")
        detail = f"world size {world_size} x micro batch {micro_batch}"
        if self.global_batch > step:
            detail += f" x accumulation {self.global_batch // step}"
        for r in self.readers:
            if len(r) < self.global_batch:
                raise UserError(
                    f"training shard {r.path.name} holds {len(r)} instances, fewer than one "
                    f"block of {self.global_batch} ({detail}): use a smaller batch or fewer, "
                    "larger shards"
                )
        self.seed, self.world_size, self.rank = seed, world_size, rank
        self.micro_batch = micro_batch
        self.bin_size, self.pad_to_longest = bin_size, pad_to_longest or bin_size is not None
        self.vocab_size = vocab_size
        self.masker = None if self.shards.masked else collate.DynamicMasker(
            self.shards, seed, max_predictions, mask_prob
        )  # fmt: skip
        self.epoch, self.shard_pos, self.offset = 0, 0, 0
        self._pool = ThreadPoolExecutor(1, "shard-prefetch") if prefetch else None
        self._pending: dict[int, Future] = {}
        self._current: tuple[int, dict] | None = None
        self._bins: dict[int, np.ndarray] = {}

    # ---- plan -------------------------------------------------------------------------
    def _shard_bins(self, s: int, arrays: dict | None = None) -> np.ndarray | None:
        if self.bin_size is None:
            return None
        if s not in self._bins:
            lengths = arrays["lengths"] if arrays is not None else self._lengths(s)
            self._bins[s] = binning.length_bins(lengths, self.bin_size)
        return self._bins[s]

    def _lengths(self, s: int) -> np.ndarray:
        """Instance lengths of shard ``s`` (int [N]), read after its checksum is verified."""
        self.readers[s].verify()
        return self.readers[s].read_all((schema.INPUT_MASK,))[schema.INPUT_MASK].sum(1)

    def _plan(self, epoch: int, s: int, arrays: dict | None = None):
        return binning.shard_plan(
            len(self.readers[s]), seed=self.seed, epoch=epoch, shard=s,
            world_size=self.world_size, rank=self.rank, micro_batch=self.micro_batch,
            block=self.global_batch, bins=self._shard_bins(s, arrays),
        )  # fmt: skip

    def batches_per_epoch(self) -> int:
        """Micro-batches per epoch on every rank (equal on all ranks, the same every epoch;
        with binning this reads every shard's ``input_mask`` once)."""
        accum = self.global_batch // (self.world_size * self.micro_batch)
        return accum * sum(
            binning.blocks_per_shard(len(r), self.global_batch, self._shard_bins(s))
            for s, r in enumerate(self.readers)
        )

    # ---- state ------------------------------------------------------------------------
    def _config(self) -> dict:
        names = [[r.path.name, len(r)] for r in self.readers]
        digest = hashlib.sha256(json.dumps(names).encode()).hexdigest()
        masking_cfg = None
        if self.masker is not None:
            masking_cfg = [self.masker.max_predictions, self.masker.mask_prob]
        return {
            "seed": self.seed, "world_size": self.world_size, "micro_batch": self.micro_batch,
            "global_batch": self.global_batch, "bin_size": self.bin_size,
            "shards_sha256": digest, "masking": masking_cfg,
        }  # fmt: skip

    def state_dict(self) -> dict:
        """Plain types: where the next batch comes from (the same on every rank) + config."""
        return {
            "version": STATE_VERSION, "epoch": self.epoch, "shard_pos": self.shard_pos,
            "offset": self.offset, "config": self._config(),
        }  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Continue at the batch after the one that was last yielded when ``state`` was taken;
        :class:`UserError` if the seed, batch layout, binning or shard set differ."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise UserError("sampler state is missing or from another loader version")
        mine, theirs = self._config(), state.get("config", {})
        diff = [k for k in mine if theirs.get(k) != mine[k]]
        if diff:
            shown = ", ".join(f"{k}: saved {theirs.get(k)!r}, now {mine[k]!r}" for k in diff)
            raise UserError(f"cannot resume the data order exactly, settings changed ({shown})")
        self.epoch, self.shard_pos, self.offset = (
            int(state["epoch"]), int(state["shard_pos"]), int(state["offset"])
        )  # fmt: skip

    # ---- loading ----------------------------------------------------------------------
    def _after(self, epoch: int, pos: int) -> int:
        """Shard index visited after position ``pos`` of ``epoch``."""
        if pos + 1 < len(self.readers):
            return int(binning.shard_order(self.seed, epoch, len(self.readers))[pos + 1])
        return int(binning.shard_order(self.seed, epoch + 1, len(self.readers))[0])

    def _read(self, s: int) -> dict:
        return load_shard(self.readers[s], self.vocab_size)

    def _load(self, s: int, epoch: int, pos: int) -> dict:
        if self._current is not None and self._current[0] == s:
            arrays = self._current[1]
        else:
            fut = self._pending.pop(s, None)
            arrays = fut.result() if fut is not None else self._read(s)
            self._current = (s, arrays)
        nxt = self._after(epoch, pos)
        if self._pool is not None and nxt != s and nxt not in self._pending:
            self._pending = {nxt: self._pool.submit(self._read, nxt)}
        return arrays

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            order = binning.shard_order(self.seed, self.epoch, len(self.readers))
            while self.shard_pos < len(order):
                s = int(order[self.shard_pos])
                arrays = self._load(s, self.epoch, self.shard_pos)
                plan, _ = self._plan(self.epoch, s, arrays)
                while self.offset < len(plan):
                    rows = plan[self.offset]
                    batch = collate.collate(
                        arrays, rows, s << ROW_BITS, pad_to_longest=self.pad_to_longest,
                        masker=self.masker, epoch=self.epoch, name=self.readers[s].path.name,
                    )  # fmt: skip
                    self.offset += 1  # state now points past this batch
                    yield batch
                self.shard_pos, self.offset = self.shard_pos + 1, 0
            self.epoch, self.shard_pos = self.epoch + 1, 0

    def __enter__(self) -> PretrainLoader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the prefetch thread (waits for a shard read in flight)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending = {}


class ValidationLoader:
    """Every validation instance once, in shard order then row order, no shuffle.

    Global instance ``i`` (counting across validation shards) goes to rank ``i % world_size``;
    batches never span shards and ranks may differ by a batch per shard (nothing is dropped),
    so reduce metric *sums* once at the end, and run the unwrapped model (a DDP forward may
    broadcast buffers, a collective that needs equal batch counts).
    Unmasked shards are masked as in epoch 0 of ``seed``: the same masks at every evaluation.
    """

    def __init__(
        self,
        shards: ShardSet | str | os.PathLike,
        micro_batch: int,
        *,
        world_size: int = 1,
        rank: int = 0,
        seed: int = 0,
        pad_to_longest: bool = False,
        max_predictions: int | None = None,
        vocab_size: int | None = None,
        mask_prob: float = collate.MASK_PROB,
    ):
        self.shards = _open(shards)
        _check_ranks(world_size, rank, micro_batch)
        self.world_size, self.rank, self.micro_batch = world_size, rank, micro_batch
        self.pad_to_longest = pad_to_longest
        self.readers = self.shards.validation
        self.vocab_size = vocab_size
        self.masker = None if self.shards.masked else collate.DynamicMasker(
            self.shards, seed, max_predictions, mask_prob
        )  # fmt: skip

    def _rows(self) -> list[np.ndarray]:
        out, start = [], 0
        for r in self.readers:
            n = len(r)
            first = (self.rank - start) % self.world_size
            out.append(np.arange(first, n, self.world_size, dtype=np.int64))
            start += n
        return out

    @property
    def num_samples(self) -> int:
        """Validation instances on this rank."""
        return sum(len(r) for r in self._rows())

    def __len__(self) -> int:
        return sum(-(-len(r) // self.micro_batch) for r in self._rows())

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for s, (reader, rows) in enumerate(zip(self.readers, self._rows())):
            if not len(rows):
                continue
            arrays = load_shard(reader, self.vocab_size)
            for i in range(0, len(rows), self.micro_batch):
                yield collate.collate(
                    arrays, rows[i : i + self.micro_batch], VALIDATION_ID_BASE + (s << ROW_BITS),
                    pad_to_longest=self.pad_to_longest, masker=self.masker, epoch=0,
                    name=reader.path.name,
                )  # fmt: skip
