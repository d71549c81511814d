"""Domain terms for an existing vocab: fill its ``[unusedN]`` slots with frequent split words.

For continued pretraining of an existing BERT on a domain corpus the ids of the existing
tokens must not move, so new whole-word tokens can only go where the vocab keeps room:
the ``[unusedN]`` entries (Google's bert-base-uncased has 994). Ranking, precisely:

1. Candidates: corpus words (as counted by :func:`pipeline.vocab.wordpiece.count_words` with
   the base vocab's case setting) that are not already a vocab entry, occur at least ``min_count``
   times, are at most 100 characters (WordPiece's limit), and that the base vocab splits into
   two or more pieces, none of them ``[UNK]``.
2. Score = ``count * (pieces - 1)``: the tokens the word would save on the counted corpus.
3. Order: score descending, then count descending, then the word (code point order).

The first ``n_terms`` candidates replace the ``[unusedN]`` slots in id order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ground.errors import UserError
from pipeline.vocab.files import MAX_INPUT_CHARS_PER_WORD
from pipeline.vocab.wordpiece import PREFIX, UNK
from sharding.vocab import check_tokens

_UNUSED = re.compile(r"\[unused\d+\]")


@dataclass(frozen=True)
class AddedTerm:
    """One word placed in an unused slot: its new id, corpus count and former piece count."""

    word: str
    id: int
    count: int
    pieces: int


def unused_slots(tokens: list[str]) -> list[int]:
    """Ids of the ``[unusedN]`` entries, ascending."""
    return [i for i, t in enumerate(tokens) if _UNUSED.fullmatch(t)]


def rank_terms(tokens: list[str], counts: Mapping[str, int], min_count: int = 2) -> list:
    """Candidates as ``(word, count, pieces)`` in the order described in the module docstring."""
    from tokenizers.models import WordPiece  # tokenizers (Rust): loaded where text is tokenized

    vocab = {t: i for i, t in enumerate(tokens)}
    model = WordPiece(
        vocab,
        unk_token=UNK,
        continuing_subword_prefix=PREFIX,
        max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
    )
    cands = []
    for word, count in counts.items():
        if count < min_count or word in vocab or len(word) > MAX_INPUT_CHARS_PER_WORD:
            continue
        pieces = [t.value for t in model.tokenize(word)]
        if len(pieces) >= 2 and UNK not in pieces:
            cands.append((word, count, len(pieces)))
    cands.sort(key=lambda c: (-c[1] * (c[2] - 1), -c[1], c[0]))
    return cands


def extend_vocab(
    tokens: list[str], counts: Mapping[str, int], n_terms: int, min_count: int = 2
) -> tuple[list[str], list[AddedTerm]]:
    """Return (new token list, terms added): ``tokens`` with ``n_terms`` unused slots filled.

    Every other id keeps its token. Raises :class:`UserError` if ``tokens`` is not a valid
    vocab, ``n_terms`` is negative or exceeds the unused slots, or the corpus has fewer than
    ``n_terms`` candidates (the message gives how many it has).
    """
    check_tokens(tokens)
    slots = unused_slots(tokens)
    if n_terms < 0:
        raise UserError(f"the number of terms to add must be >= 0, got {n_terms}")
    if n_terms > len(slots):
        raise UserError(
            f"cannot add {n_terms} terms: the vocab has only {len(slots)} [unusedN] slots"
        )
    cands = rank_terms(tokens, counts, min_count)
    if len(cands) < n_terms:
        raise UserError(
            f"cannot add {n_terms} terms: the corpus has only {len(cands)} words that occur "
            f">= {min_count} times and that the vocab splits into several known pieces"
        )
    new = list(tokens)
    added = []
    for slot, (word, count, pieces) in zip(slots, cands[:n_terms]):
        new[slot] = word
        added.append(AddedTerm(word, slot, count, pieces))
    return new, added
