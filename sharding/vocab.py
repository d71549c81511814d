"""A WordPiece ``vocab.txt`` as the shard tools need it: ids of special tokens and decoding.

One token per line, id = line number from 0 (BERT's format). Only the standard special tokens
are looked up; ``[PAD]`` must be id 0 because the schema pads with zeros.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ground.errors import UserError

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class Vocab:
    """Tokens by id plus the special ids (``pad``, ``unk``, ``cls``, ``sep``, ``mask``)."""

    tokens: tuple[str, ...]
    pad: int
    unk: int
    cls: int
    sep: int
    mask: int

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def special_ids(self) -> np.ndarray:
        """int64 ids of the five special tokens."""
        return np.array([self.pad, self.unk, self.cls, self.sep, self.mask], dtype=np.int64)

    def decode(self, ids) -> str:
        """Token ids -> text: WordPiece ``##`` continuations joined to the previous token."""
        out: list[str] = []
        for i in np.asarray(ids).tolist():
            tok = self.tokens[i] if 0 <= i < len(self.tokens) else f"<{i}?>"
            if tok.startswith("##") and out:
                out[-1] += tok[2:]
            else:
                out.append(tok)
        return " ".join(out)


def load_vocab(path: str | os.PathLike) -> Vocab:
    """Read ``vocab.txt``; :class:`UserError` if a special token is missing or [PAD] is not 0."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise UserError(f"vocab {path} does not exist") from None
    if lines and lines[-1] == "":
        lines.pop()
    tokens = tuple(line.rstrip("\r") for line in lines)
    index = {}
    for i, tok in enumerate(tokens):
        index.setdefault(tok, i)
    missing = [s for s in SPECIALS if s not in index]
    if missing:
        raise UserError(f"vocab {path}: special tokens {missing} are missing")
    if index["[PAD]"] != 0:
        raise UserError(f"vocab {path}: [PAD] is id {index['[PAD]']}, shards need it at 0")
    return Vocab(tokens, *(index[s] for s in SPECIALS))
