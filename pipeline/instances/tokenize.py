"""BERT WordPiece encoding several times faster than ``tokenizers.Tokenizer.encode_batch``,
with identical ids.

A BERT tokenizer is three per-sentence steps: normalise (``BertNormalizer``), split into words
(``BertPreTokenizer``: whitespace and punctuation) and WordPiece each word. The last step is a
pure function of the word, and natural text repeats a small set of words, so a word table
(dict ``word -> row``; the rows' WordPiece ids live in numpy arrays) answers almost every word and
a document's ids are one numpy gather. The first two steps are reproduced from the
tokenizer's own components, not from a re-reading of BERT's rules:

* normalisation: an ASCII sentence goes through ``str.translate`` with a 128-entry table filled by
  asking the tokenizer's normaliser about each ASCII character (for ASCII the normaliser is
  per character: drop controls, map whitespace to a space, lowercase); any other sentence
  goes through the tokenizer's own normaliser.
* word splitting: a regex whose character classes (whitespace, punctuation, word) are filled
  lazily by asking the tokenizer's pre-tokenizer about each character the first time it is seen.
* WordPiece misses: the tokenizer's own model (``Tokenizer.model.tokenize(word)``).

A sentence containing an added token's text (``[MASK]``, ``[UNK]``...), which ``tokenizers``
matches before normalisation, is encoded by the tokenizer itself. Tokenizers that are not
BertNormalizer + BertPreTokenizer + WordPiece use plain ``encode_batch`` (``fast`` is False).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain

import numpy as np
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.implementations import BertWordPieceTokenizer
from tokenizers.models import WordPiece

from ground.errors import UserError

# A word table past this many words is dropped and refilled: Wikipedia has millions of rare
# words (numbers, names) and the table must not grow without bound.
MAX_CACHE_WORDS = 1_000_000
_WORD, _SPACE, _PUNCT = 0, 1, 2


class FastWordPiece:
    """Sentences to WordPiece ids equal to ``Tokenizer.encode(s, add_special_tokens=False)``."""

    def __init__(self, tokenizer: Tokenizer):
        if tokenizer.truncation is not None or tokenizer.padding is not None:
            # A tokenizer.json may carry truncation/padding; instances need whole sentences.
            tokenizer = Tokenizer.from_str(tokenizer.to_str())
            tokenizer.no_truncation()
            tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.fast = (
            isinstance(tokenizer.normalizer, normalizers.BertNormalizer)
            and isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer)
            and isinstance(tokenizer.model, WordPiece)
        )
        self._fallback: dict[str, list[int]] = {}
        self._serial = 0
        self._reset_table()
        self._added = sorted(t.content for t in tokenizer.get_added_tokens_decoder().values())
        self._added_first = "".join(sorted({t[0] for t in self._added if t}))
        if not self.fast:
            return
        self._normalizer = tokenizer.normalizer
        self._pre_tokenizer = tokenizer.pre_tokenizer
        self._model = tokenizer.model
        # ASCII normalisation table: for ASCII input the normaliser is character by character.
        self._ascii_table = {c: self._normalizer.normalize_str(chr(c)) for c in range(128)}
        self._classes: dict[str, int] = {}
        self._regex: re.Pattern[str] | None = None
        self._classify("".join(chr(c) for c in range(128)))

    @classmethod
    def from_vocab_file(
        cls, path: str, lowercase: bool = True, strip_accents: bool | None = None
    ) -> FastWordPiece:
        """Build from a ``vocab.txt`` exactly as ``BertWordPieceTokenizer(path, ...)`` would."""
        try:
            tok = BertWordPieceTokenizer(
                str(path), lowercase=lowercase, strip_accents=strip_accents
            )
        except Exception as exc:  # tokenizers raises a bare Exception for unreadable vocabs
            raise UserError(f"cannot read vocab {path}: {exc}") from exc
        return cls(tok._tokenizer)

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> FastWordPiece:
        """Wrap a ``tokenizers.Tokenizer``, e.g. ``Tokenizer.from_file("tokenizer.json")``."""
        return cls(tokenizer)

    def _classify(self, chars: str) -> None:
        """Ask the pre-tokenizer whether each new character is whitespace, punctuation or word."""
        new = [c for c in set(chars) if c not in self._classes]
        if not new and self._regex is not None:
            return
        for c in new:
            pieces = [w for w, _ in self._pre_tokenizer.pre_tokenize_str("a" + c + "a")]
            if pieces == ["a", "a"]:
                self._classes[c] = _SPACE
            elif pieces == ["a", c, "a"]:
                self._classes[c] = _PUNCT
            elif pieces == ["a" + c + "a"]:
                self._classes[c] = _WORD
            else:  # not a context-free character: let the tokenizer handle such sentences
                self._classes[c] = -1
        punct = "".join(re.escape(c) for c, k in sorted(self._classes.items()) if k == _PUNCT)
        space = "".join(re.escape(c) for c, k in sorted(self._classes.items()) if k == _SPACE)
        # One punctuation character is one word; a word is a run of anything else but spaces.
        # "\n" (whitespace) is matched on its own: encode_document's sentence separator.
        self._regex = re.compile(f"\\n|[{punct}]|[^{punct}{space}]+")

    def _words_ok(self, text: str) -> bool:
        """True when every character of normalised ``text`` has a context-free class."""
        self._classify(text)
        return all(self._classes[c] >= 0 for c in set(text))

    def _index(self, words: list[str]) -> np.ndarray:
        """Word-table rows (int64 [W]) of ``words``, WordPiece-ing the words not seen before."""
        get = self._cache.__getitem__
        try:
            return np.fromiter(map(get, words), dtype=np.int64, count=len(words))
        except KeyError:
            pass
        missing = set(words).difference(self._cache)
        if len(self._cache) + len(missing) > MAX_CACHE_WORDS:
            self._reset_table()
            missing = set(words).difference(self._cache)
        for w in sorted(missing):  # sorted: the table layout does not depend on set order
            if w[:1] == "\x00":  # a whole sentence the tokenizer encoded (see encode_document)
                ids = self._fallback[w]
            else:
                ids = [t.id for t in self._model.tokenize(w)]
            self._add_word(w, ids)
        return np.fromiter(map(self._cache.__getitem__, words), dtype=np.int64, count=len(words))

    def _reset_table(self) -> None:
        self._cache = {}
        self._n_words = 0
        self._n_pieces = 0
        self._w_start = np.zeros(1 << 14, np.int64)
        self._w_len = np.zeros(1 << 14, np.int64)
        self._pieces = np.zeros(1 << 15, np.int32)
        self._newline_row = 0
        self._add_word("\n", [])  # row 0: the sentence separator, no pieces

    def _add_word(self, word: str, ids: list[int]) -> None:
        n, m = self._n_words, self._n_pieces
        if n == len(self._w_start):
            self._w_start = np.concatenate([self._w_start, np.zeros_like(self._w_start)])
            self._w_len = np.concatenate([self._w_len, np.zeros_like(self._w_len)])
        while m + len(ids) > len(self._pieces):
            self._pieces = np.concatenate([self._pieces, np.zeros_like(self._pieces)])
        self._w_start[n] = m
        self._w_len[n] = len(ids)
        self._pieces[m : m + len(ids)] = ids
        self._cache[word] = n
        self._n_words, self._n_pieces = n + 1, m + len(ids)

    def _has_added(self, sentence: str) -> bool:
        if not self._added_first or not any(c in sentence for c in self._added_first):
            return False
        return any(t in sentence for t in self._added)

    def encode(self, sentence: str) -> list[int]:
        """WordPiece ids of one sentence, without special tokens."""
        return self.encode_batch([sentence])[0]

    def encode_batch(self, sentences: Sequence[str]) -> list[list[int]]:
        """WordPiece ids of each sentence (no ``[CLS]``/``[SEP]``): one list of ints each."""
        if not self.fast:
            encs = self.tokenizer.encode_batch(list(sentences), add_special_tokens=False)
            return [e.ids for e in encs]
        tokens, offsets = self.encode_document(sentences)
        flat, off = tokens.tolist(), offsets.tolist()
        return [flat[off[i] : off[i + 1]] for i in range(len(sentences))]

    def encode_document(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All sentences of a document at once: ``tokens`` int32 [T] and ``offsets`` int64
        [S + 1]; sentence i is ``tokens[offsets[i]:offsets[i + 1]]``."""
        if not self.fast:
            ids = self.encode_batch(sentences)
            offsets = np.zeros(len(ids) + 1, np.int64)
            np.cumsum([len(x) for x in ids], out=offsets[1:])
            return np.fromiter(chain.from_iterable(ids), np.int32, int(offsets[-1])), offsets
        # Normalise each sentence, join them with "\n" (normalised text never holds one: it is
        # whitespace) and split the whole document in one regex pass; "\n" is a zero-piece word
        # that marks sentence ends.
        norms: list[str] = []
        table, fallback = self._ascii_table, []
        for s in sentences:
            if self._has_added(s):
                norm = None
            elif s.isascii():
                norm = s.translate(table)
            else:
                norm = self._normalizer.normalize_str(s)
                if not norm.isascii() and not self._words_ok(norm):
                    norm = None
            if norm is None:  # the tokenizer's own answer, as one pseudo-word of word chars
                self._serial += 1
                norm = f"\x00{self._serial}"  # "\x00" never survives normalisation
                self._fallback[norm] = self.tokenizer.encode(s, add_special_tokens=False).ids
                fallback.append(norm)
            norms.append(norm)
        words = self._regex.findall("\n".join(norms))
        idx = self._index(words)
        for key in fallback:  # one-off sentences: keep them out of the word table's index
            del self._cache[key]
        self._fallback.clear()
        lens = self._w_len[idx]
        ends = np.cumsum(lens)
        starts = self._w_start[idx]
        total = int(ends[-1]) if len(ends) else 0
        gather = np.arange(total) + np.repeat(starts - (ends - lens), lens)
        offsets = np.zeros(len(sentences) + 1, np.int64)
        offsets[1:-1] = ends[idx == self._newline_row]
        offsets[-1] = total
        return self._pieces[gather], offsets
