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


def parse_vocab_txt(text: str) -> list[str]:
    """The tokens of ``vocab.txt`` content: one per line, ``\n`` or ``\r\n``, last end optional."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def check_tokens(tokens: list[str], source: str = "vocab") -> None:
    """Raise :class:`UserError` unless ``tokens`` is a usable BERT vocab.

    The one set of rules, for the vocab stage, the instances stage, the shard tools and the
    runner: non-empty, no duplicates, no empty token or token with a line break or tab,
    ``[PAD]`` at id 0 (the schema pads with zeros) and ``[UNK] [CLS] [SEP] [MASK]`` present.
    """
    if not tokens:
        raise UserError(f"{source}: the vocab is empty")
    seen: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        if not tok or any(c in tok for c in "\n\r\t"):
            raise UserError(f"{source}: token {i} is empty or holds a line break or tab: {tok!r}")
        if tok in seen:
            raise UserError(f"{source}: token {tok!r} appears twice (ids {seen[tok]} and {i})")
        seen[tok] = i
    missing = [t for t in SPECIALS if t not in seen]
    if missing:
        raise UserError(f"{source}: missing special token(s) {' '.join(missing)}")
    if seen["[PAD]"] != 0:
        raise UserError(f"{source}: [PAD] must have id 0, it has id {seen['[PAD]']}")


def vocab_from_tokens(tokens: list[str] | tuple[str, ...], source: str = "vocab") -> Vocab:
    """A checked :class:`Vocab` of ``tokens`` (id = position)."""
    tokens = tuple(tokens)
    check_tokens(list(tokens), source)
    index = {tok: i for i, tok in enumerate(tokens)}
    return Vocab(tokens, *(index[s] for s in SPECIALS))


def read_text(path: str | os.PathLike, what: str = "vocab") -> str:
    """A vocab (or ``what``) file's text; :class:`UserError` if missing, unreadable or not UTF-8."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_vocab(path: str | os.PathLike) -> Vocab:
    """Read ``vocab.txt``; :class:`UserError` if it breaks a rule of :func:`check_tokens`."""
    return vocab_from_tokens(parse_vocab_txt(read_text(path)), f"vocab {path}")
