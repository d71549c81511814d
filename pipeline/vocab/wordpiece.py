"""A deterministic WordPiece trainer over (word, count) pairs.

The counts come from :mod:`pipeline.vocab.word_counts` (the final tokenizer's own normaliser and
pre-tokeniser, summed across workers).

:func:`train_wordpiece` mirrors HF's ``WordPieceTrainer`` (BPE training with the ``##``
continuing-subword prefix, ``tokenizers/src/models/bpe/trainer.rs``): an alphabet of the
``limit_alphabet`` most frequent characters; every word split into characters, non-initial
ones written ``##c``; the most frequent adjacent pair merged again and again (``a`` + ``##b`` ->
``ab``, ``##a`` + ``##b`` -> ``##ab``) until the vocab is full or no pair is frequent enough.
Differences from HF, all deliberate:

- Ties between equally frequent pairs go to the pair with the smaller token ids (left id, then
  right id), as in HF, but our ids are fixed by the strings (the layout below: alphabet and
  ``##`` pieces in code point order, merged tokens in merge order) where HF numbers ``##``
  pieces in hash order. So the vocab is byte-identical across runs, input orders and worker
  counts, and agrees with HF's on > 99.9% of entries (HF's own runs differ by about as much).
- A word holding a character outside the kept alphabet is left out of merging (HF drops the
  character and merges the rest, although the tokenizer will map that word to ``[UNK]``); such
  words are counted in :class:`TrainedVocab`.
- Pair counts are exact after every merge (HF leaves the merged pair's count stale).

Id layout (``vocab.txt`` line number = id)::

    0              [PAD]
    1 .. U         [unused0] .. [unused{U-1}]   (U = n_unused, default 0)
    U+1 .. U+4     [UNK] [CLS] [SEP] [MASK]
    U+5 ..         alphabet characters (code point order), then "##" + character
                   (code point order), then merged tokens in merge order

With ``n_unused=0`` the specials are ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``, as in HF's
``BertWordPieceTokenizer``. ``vocab_size`` counts everything, specials and unused slots included.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from ground.errors import UserError
from sharding.vocab import SPECIALS

# The special tokens and their order are the shard contract's (sharding.vocab.SPECIALS).
SPECIAL_TOKENS = SPECIALS
PAD, UNK, CLS, SEP, MASK = SPECIAL_TOKENS
PREFIX = "##"
DEFAULT_VOCAB_SIZE = 30522


@dataclass(frozen=True)
class WordPieceConfig:
    """Training options.

    Attributes:
        vocab_size: entries in the final vocab, specials and unused slots included.
        min_frequency: a pair is merged only if it occurs at least this often (occurrences,
            weighted by word counts).
        limit_alphabet: keep at most this many characters (the most frequent; ties by code
            point); words with other characters do not take part in merging.
        n_unused: ``[unusedN]`` slots reserved after ``[PAD]`` for later domain terms.
        allow_smaller: if the corpus runs out of pairs first, return the smaller vocab instead
            of raising :class:`UserError`.
    """

    vocab_size: int = DEFAULT_VOCAB_SIZE
    min_frequency: int = 2
    limit_alphabet: int = 1000
    n_unused: int = 0
    allow_smaller: bool = False


@dataclass(frozen=True)
class TrainedVocab:
    """A trained vocab: ``tokens[i]`` has id ``i``; plus what training saw and skipped."""

    tokens: list[str]
    n_merges: int
    last_merge_count: int  # occurrences of the last merged pair (0 if none)
    alphabet_size: int
    words: int  # distinct words given
    skipped_words: int  # distinct words with a character outside the alphabet
    skipped_occurrences: int


def special_layout(n_unused: int) -> list[str]:
    """The fixed head of every trained vocab: [PAD], [unused0..n-1], [UNK], [CLS], [SEP], [MASK]."""
    return [PAD] + [f"[unused{i}]" for i in range(n_unused)] + [UNK, CLS, SEP, MASK]


def _validate(counts: Mapping[str, int], config: WordPieceConfig) -> None:
    if config.vocab_size < 1 or config.min_frequency < 0 or config.limit_alphabet < 1:
        raise UserError(
            "vocab size and alphabet limit must be positive and min frequency >= 0, got "
            f"{config.vocab_size}, {config.limit_alphabet}, {config.min_frequency}"
        )
    if config.n_unused < 0:
        raise UserError(f"the number of [unused] slots must be >= 0, got {config.n_unused}")
    if not counts:
        raise UserError("no words to train a vocab on: the corpus is empty")
    for word, count in counts.items():
        if not isinstance(word, str) or not word or any(c.isspace() for c in word):
            raise UserError(f"invalid word in counts: {word!r} (empty or with whitespace)")
        if not isinstance(count, int) or count < 1:
            raise UserError(f"invalid count for {word!r}: {count!r} (must be a positive integer)")


def _alphabet(words: list[tuple[str, int]], limit: int) -> list[str]:
    """Characters sorted by code point; the ``limit`` most frequent (ties by code point)."""
    freq: dict[str, int] = {}
    for word, count in words:
        for ch in word:
            freq[ch] = freq.get(ch, 0) + count
    kept = sorted(freq, key=lambda ch: (-freq[ch], ch))[:limit]
    return sorted(kept)


def train_wordpiece(counts: Mapping[str, int], config: WordPieceConfig) -> TrainedVocab:
    """Train a WordPiece vocab from word counts; deterministic for equal counts.

    Args:
        counts: normalised, pre-tokenised word -> occurrences (see :func:`count_words`).
        config: sizes and thresholds.

    Raises:
        UserError: empty counts, invalid options, a vocab size below the specials + alphabet,
            or (unless ``config.allow_smaller``) a corpus without enough frequent pairs to
            reach ``config.vocab_size``; the message says the size reached.
    """
    _validate(counts, config)
    items = sorted(counts.items())  # word index order is fixed by the words themselves
    alphabet = _alphabet(items, config.limit_alphabet)
    allowed = set(alphabet)
    kept = [(w, c) for w, c in items if allowed.issuperset(w)]
    skipped_occ = sum(c for w, c in items if not allowed.issuperset(w))
    non_initial = sorted({ch for w, _ in kept for ch in w[1:]})

    tokens = special_layout(config.n_unused) + alphabet + [PREFIX + ch for ch in non_initial]
    if len(tokens) > config.vocab_size:
        raise UserError(
            f"vocab size {config.vocab_size} is below the {len(tokens)} entries the specials and "
            f"the alphabet need; raise --vocab-size or lower the alphabet limit"
        )
    tok_id = {t: i for i, t in enumerate(tokens)}
    words = [
        [tok_id[w[0]]] + [tok_id[PREFIX + ch] for ch in w[1:]] for w, _ in kept
    ]  # symbol ids per word, merged in place
    freqs = [c for _, c in kept]
    n_merges, last_count = _merge_loop(words, freqs, tokens, tok_id, config)
    if len(tokens) < config.vocab_size and not config.allow_smaller:
        raise UserError(
            f"the corpus supports only {len(tokens)} vocab entries at min frequency "
            f"{config.min_frequency} (asked for {config.vocab_size}): use a smaller vocab size, "
            f"a lower min frequency, more text, or allow a smaller vocab"
        )
    return TrainedVocab(
        tokens=tokens,
        n_merges=n_merges,
        last_merge_count=last_count,
        alphabet_size=len(alphabet),
        words=len(items),
        skipped_words=len(items) - len(kept),
        skipped_occurrences=skipped_occ,
    )


def _merge_loop(
    words: list[list[int]],
    freqs: list[int],
    tokens: list[str],
    tok_id: dict[str, int],
    config: WordPieceConfig,
) -> tuple[int, int]:
    """Merge the best pair until ``tokens`` is full; appends to ``tokens``/``tok_id``.

    ``pair_counts`` is exact at all times; ``where[pair]`` is a superset of the words holding
    the pair (words are added when a pair appears and never removed, a stale entry costs one
    scan). The heap holds (-count, (left id, right id)) entries, so ties go to smaller ids;
    an entry whose count is stale is re-queued with the current count, and every count
    increase pushes a fresh entry, so the first fresh entry popped is the true best pair.
    Returns (merges done, count of the last merged pair).
    """
    pair_counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for wi, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] = pair_counts.get(pair, 0) + freq
            where.setdefault(pair, set()).add(wi)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    n_merges = last = 0
    floor = max(config.min_frequency, 1)
    while len(tokens) < config.vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        current = pair_counts.get(pair, 0)
        if current != -neg:
            if current > 0:
                heapq.heappush(heap, (-current, pair))
            continue
        if current < floor:
            break
        left, right = tokens[pair[0]], tokens[pair[1]]
        new = left + (right[len(PREFIX) :] if right.startswith(PREFIX) else right)
        new_id = tok_id.get(new)
        if new_id is None:  # two different pairs can spell the same token
            new_id = tok_id[new] = len(tokens)
            tokens.append(new)
        n_merges, last = n_merges + 1, current
        _apply_merge(pair, new_id, words, freqs, where, pair_counts, heap)
    return n_merges, last


def _apply_merge(pair, new_id, words, freqs, where, pair_counts, heap) -> None:
    """Replace ``pair`` by ``new_id`` (left to right, non-overlapping) in every word holding it.

    Only the pairs next to each replaced occurrence change, so the count updates are local:
    for an occurrence at ``i`` the pairs (x, a) and (b, y) go and (x, new) and (new, y) come,
    where two back-to-back occurrences share one (b, a) -> (new, new) junction.
    """
    a, b = pair
    delta: dict[tuple[int, int], int] = {}
    for wi in where.pop(pair):
        word = words[wi]
        try:
            i = word.index(a)  # C-speed scan; a stale index entry fails here or below
        except ValueError:
            continue
        n = len(word)
        pos = []
        while True:
            if i + 1 < n and word[i + 1] == b:
                pos.append(i)
                i += 2
            else:
                i += 1
            try:
                i = word.index(a, i)
            except ValueError:
                break
        if not pos:
            continue
        freq = freqs[wi]
        out: list[int] = []
        copied = 0
        last = len(pos) - 1
        for k, i in enumerate(pos):
            out.extend(word[copied:i])
            out.append(new_id)
            copied = i + 2
            if i > 0:
                if k and pos[k - 1] == i - 2:  # junction: (b, a) already removed
                    added = (new_id, new_id)
                else:
                    gone = (word[i - 1], a)
                    delta[gone] = delta.get(gone, 0) - freq
                    added = (word[i - 1], new_id)
                delta[added] = delta.get(added, 0) + freq
                where.setdefault(added, set()).add(wi)
            if i + 2 < n:
                gone = (b, word[i + 2])
                delta[gone] = delta.get(gone, 0) - freq
                if k == last or pos[k + 1] != i + 2:
                    added = (new_id, word[i + 2])
                    delta[added] = delta.get(added, 0) + freq
                    where.setdefault(added, set()).add(wi)
        out.extend(word[copied:])
        words[wi] = out
    pair_counts.pop(pair, None)
    for p, d in delta.items():
        if d == 0 or p == pair:
            continue
        c = pair_counts.get(p, 0) + d
        if c > 0:
            pair_counts[p] = c
            if d > 0:
                heapq.heappush(heap, (-c, p))
        else:
            pair_counts.pop(p, None)
            where.pop(p, None)
