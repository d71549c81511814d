"""Masked-LM / next-sentence instances from tokenized documents (Google BERT's algorithm).

:func:`build_group_batches` builds every instance of one *group* of documents (the documents among
which random-next draws happen), ``dupe_factor`` passes over each document, following
``create_instances_from_document`` in Google's ``create_pretraining_data.py``: chunks of
sentences up to a target length, A/B split at a random sentence, 50% random next from another
document with the unused sentences put back, ``truncate_seq_pair`` from a random end,
``[CLS] A [SEP] B [SEP]``; then masks (see :mod:`pipeline.instances.masking`).

Documented deviations from Google (``classic=False``, the default), each counted in
:class:`InstanceStats`:

* the short target (probability ``short_seq_prob``) is drawn per instance, not once per document
  per pass (Google's draw makes a whole book pass short or long);
* a one-sentence chunk is a random next only on the coin (Google forces it: 0.52-0.60 random on
  the 17 books, by seed, as short passes make many one-sentence chunks); its actual next is the
  document's following sentence(s), up to the target; only the last sentence of a document,
  which has no next, is forced (``forced_random_next``);
* the random replacement token is never a special or ``[unusedN]`` token;
* the other document is drawn uniformly among the group's *other* documents (Google retries 10
  times and may fall back to the same document); a group of one document has no random next.

``classic=True`` restores Google's behaviour. Determinism: documents are sorted by id and every
random choice derives from (seed, phase, document id, dupe index), so the output depends neither on
input order nor on the worker.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import NamedTuple

import numpy as np

from ground.errors import UserError
from pipeline.instances.masking import VocabInfo
from pipeline.instances.types import (
    BLOCK,
    Instance,
    InstanceBatch,
    InstanceConfig,
    InstanceStats,
    finish_block,
)

__all__ = [
    "Instance",
    "InstanceBatch",
    "InstanceConfig",
    "InstanceStats",
    "TokenDoc",
    "VocabInfo",
    "FlatDoc",
    "build_group_batches",
    "build_group_instances",
    "doc_seed",
    "truncated_lengths",
]


class TokenDoc(NamedTuple):
    """A tokenized document: ``id`` (16 hex chars) and its sentences as lists of token ids."""

    id: str
    sentences: Sequence[Sequence[int]]


class FlatDoc(NamedTuple):
    """A tokenized document in flat form (``FastWordPiece.encode_document``'s output):
    ``tokens`` int32 [T], ``offsets`` int64 [S + 1]; sentence i is
    ``tokens[offsets[i]:offsets[i + 1]]``."""

    id: str
    tokens: np.ndarray
    offsets: np.ndarray


def _flatten(doc: TokenDoc | FlatDoc) -> tuple[np.ndarray, np.ndarray]:
    """(tokens int32 [T], sentence lengths int64 [S]) of either document form."""
    if isinstance(doc, FlatDoc):
        offsets = np.asarray(doc.offsets, dtype=np.int64)
        tokens = np.asarray(doc.tokens, dtype=np.int32)[offsets[0] : offsets[-1]]
        return tokens, np.diff(offsets)
    lens = np.array([len(x) for x in doc.sentences], dtype=np.int64)
    flat = np.fromiter(chain.from_iterable(doc.sentences), dtype=np.int32, count=int(lens.sum()))
    return flat, lens


def doc_seed(seed: int, phase: str, doc_id: str, dupe: int) -> int:
    """64-bit seed of one pass over one document: blake2b of (seed, phase, doc id, dupe index)."""
    raw = f"{seed}\x00{phase}\x00{doc_id}\x00{dupe}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


def truncated_lengths(la: int, lb: int, max_tokens: int) -> tuple[int, int]:
    """Lengths left by Google's ``truncate_seq_pair``: trim the longer side (B on ties) one token
    at a time until ``la + lb <= max_tokens``; computed in O(1)."""
    if la + lb <= max_tokens:
        return la, lb
    fa = min(la, max(max_tokens - lb, (max_tokens + 1) // 2))
    return fa, max_tokens - fa


def _randint(rng: random.Random, lo: int, hi: int) -> int:
    """Uniform int in [lo, hi] from one ``random()`` draw (faster than ``randint``)."""
    return lo + int(rng.random() * (hi - lo + 1))


def _trim(start: int, end: int, keep: int, rng: random.Random) -> tuple[int, int]:
    """Cut the range [start, end) to ``keep`` tokens, each cut token from the front or the back
    with probability 1/2 (the front count is Binomial(cut, 1/2), as in Google's loop)."""
    cut = end - start - keep
    if cut <= 0:
        return start, end
    front = rng.getrandbits(cut).bit_count()
    return start + front, start + front + keep


class _Builder:
    """Structural pass over one group: pure Python on sentence offsets, ``random.Random`` per
    document pass. Instances are token ranges into one int32 array of the group's tokens."""

    def __init__(self, docs: Sequence[TokenDoc], cfg: InstanceConfig, seed: int):
        self.cfg, self.seed = cfg, seed
        docs = sorted(docs, key=lambda d: d.id)
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            raise UserError("duplicate document ids in one group")
        st = self.stats = InstanceStats()
        # docs[k] = (doc id, offsets): sentence j spans tokens[offsets[j]:offsets[j + 1]].
        self.docs: list[tuple[str, list[int]]] = []
        parts: list[np.ndarray] = []
        base = 0
        for d in docs:
            tokens, lens = _flatten(d)
            st.empty_sentences += int((lens == 0).sum())
            lens = lens[lens > 0]
            st.long_sentences += int((lens > cfg.max_num_tokens).sum())
            if len(lens) == 0:
                st.empty_documents += 1
                continue
            offsets = np.zeros(len(lens) + 1, np.int64)
            np.cumsum(lens, out=offsets[1:])
            self.docs.append((d.id, (offsets + base).tolist()))
            parts.append(tokens)
            base += len(tokens)
        st.documents = len(self.docs)
        self.tokens = np.concatenate(parts) if parts else np.zeros(0, np.int32)

    def _target(self, rng: random.Random) -> tuple[int, bool]:
        m = self.cfg.max_num_tokens
        if rng.random() < self.cfg.short_seq_prob:
            return _randint(rng, 2, m), True
        return m, False

    def _other(self, di: int, rng: random.Random) -> int:
        """Index of the document B is drawn from, or -1 when there is none."""
        n = len(self.docs)
        if self.cfg.classic:  # Google: 10 tries, then whatever the last try gave
            j = di
            for _ in range(10):
                j = _randint(rng, 0, n - 1)
                if j != di:
                    break
            return j
        if n < 2:
            return -1
        j = _randint(rng, 0, n - 2)
        return j + 1 if j >= di else j

    def run(self) -> Iterator[tuple]:
        """Yield raw instances ``(a0, a1, b0, b1, doc_id, dupe, index, short, random_next,
        b_doc_id, seed64)`` (token ranges; ``b0 == b1 == -1`` without NSP) in (dupe, document
        id) order."""
        phase = self.cfg.phase
        for dupe in range(self.cfg.dupe_factor):
            for di, (doc_id, offsets) in enumerate(self.docs):
                s64 = doc_seed(self.seed, phase, doc_id, dupe)
                yield from self._document(di, doc_id, offsets, dupe, s64, random.Random(s64))

    def _document(self, di, doc_id, off, dupe, s64, rng) -> Iterator[tuple]:
        cfg = self.cfg
        target, short = self._target(rng)
        n = len(off) - 1
        c0 = i = index = 0  # the chunk is sentences c0..i
        while i < n:
            if i == n - 1 or off[i + 1] - off[c0] >= target:
                if cfg.no_nsp:
                    a0, a1 = self._truncate(off[c0], off[i + 1], -1, -1, rng)[:2]
                    yield a0, a1, -1, -1, doc_id, dupe, index, short, False, "", s64
                    index += 1
                else:
                    out, i = self._pair(di, doc_id, off, c0, i, target, rng)
                    if out is not None:
                        a0, a1, b0, b1, rnd, b_doc = out
                        a0, a1, b0, b1 = self._truncate(a0, a1, b0, b1, rng)
                        yield a0, a1, b0, b1, doc_id, dupe, index, short, rnd, b_doc, s64
                        index += 1
                c0 = i + 1
                if not cfg.classic:
                    target, short = self._target(rng)
            i += 1
        if cfg.classic:
            self.stats.short_target_passes += short

    def _truncate(self, a0, a1, b0, b1, rng):
        """Google's ``truncate_seq_pair`` on ranges (``b0 < 0``: one segment, no B)."""
        m = self.cfg.max_num_tokens
        la, lb = a1 - a0, max(b1 - b0, 0)
        fa, fb = (min(la, m), 0) if b0 < 0 else truncated_lengths(la, lb, m)
        cut = la - fa + lb - fb
        if cut:
            self.stats.truncated += 1
            self.stats.truncated_tokens += cut
            a0, a1 = _trim(a0, a1, fa, rng)
            if b0 >= 0:
                b0, b1 = _trim(b0, b1, fb, rng)
        return a0, a1, b0, b1

    def _pair(self, di, doc_id, off, c0, i, target, rng):
        """One A/B pair from the chunk c0..i; returns ((a0, a1, b0, b1, random_next, b_doc_id)
        or None, the new i)."""
        cfg, st = self.cfg, self.stats
        size = i - c0 + 1
        one = size == 1
        st.one_sentence_chunks += one
        a_end = c0 + (_randint(rng, 1, size - 1) if size >= 2 else 1)  # A = c0..a_end-1
        last = i == len(off) - 2
        if cfg.classic:
            rnd = one or rng.random() < 0.5
            st.forced_random_next += one
        else:
            rnd = rng.random() < 0.5
            if one and not rnd and last:
                rnd = True  # the last sentence has no actual next
                st.forced_random_next += 1
        other = self._other(di, rng) if rnd else -1
        if rnd and other < 0:
            st.random_next_unavailable += 1
            if one and last:
                st.no_pair_skipped += 1
                return None, i
            rnd = False
        a0, a1 = off[c0], off[a_end]
        if rnd:
            b_doc, roff = self.docs[other]
            st.random_next_same_doc += b_doc == doc_id
            target_b = target - (a1 - a0)
            j = _randint(rng, 0, len(roff) - 2)
            b0 = roff[j]
            while roff[j + 1] - b0 < target_b and j + 2 < len(roff):
                j += 1
            i = a_end - 1  # put the unused sentences back
            return (a0, a1, b0, roff[j + 1], True, b_doc), i
        if one:  # actual next of a one-sentence chunk: the following sentence(s), up to target
            target_b = target - (a1 - a0)
            i += 1
            while off[i + 1] - a1 < target_b and i + 2 < len(off):
                i += 1
            return (a0, a1, a1, off[i + 1], False, doc_id), i
        return (a0, a1, a1, off[i + 1], False, doc_id), i


def build_group_batches(
    docs: Iterable[TokenDoc | FlatDoc],
    cfg: InstanceConfig,
    vocab: VocabInfo,
    seed: int,
    block_size: int = BLOCK,
) -> Iterator[tuple[InstanceBatch, InstanceStats]]:
    """Build all instances of one group as padded numpy blocks of at most ``block_size``.

    Yields ``(batch, stats)`` per block; ``stats`` counts that block's instances and masks, and
    the last block's stats also carry the group's structural counts (sum them with
    :meth:`InstanceStats.merge`). The last batch may be empty. Memory: one block plus the
    group's tokens (int32).
    """
    builder = _Builder(list(docs), cfg, seed)
    pending: list[tuple] = []
    for raw in builder.run():
        pending.append(raw)
        if len(pending) >= block_size:
            batch, st = finish_block(pending, cfg, vocab, builder.tokens)
            pending = []
            yield batch, st
    batch, st = finish_block(pending, cfg, vocab, builder.tokens)
    yield batch, st.merge(builder.stats)


def build_group_instances(
    docs: Iterable[TokenDoc | FlatDoc], cfg: InstanceConfig, vocab: VocabInfo, seed: int
) -> tuple[list[Instance], InstanceStats]:
    """All instances of one group as :class:`Instance` records, plus the group's statistics."""
    out: list[Instance] = []
    stats = InstanceStats()
    for batch, st in build_group_batches(docs, cfg, vocab, seed):
        out.extend(batch.instances())
        stats = stats.merge(st)
    return out, stats
