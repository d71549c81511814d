"""Sentence segmentation: splitter choice, a CJK splitter, a length bound, the document function.

The Punkt splitter itself (:class:`PunktSplitter`, a fast re-implementation of NLTK's
``PunktSentenceTokenizer``) lives in :mod:`pipeline.segment.punkt` and is re-exported here with
its NLTK patterns, so ``from pipeline.segment.segment import PunktSplitter`` keeps working.

Here: :func:`split_cjk` for Japanese/Chinese, :func:`get_splitter` for ``--language``,
:func:`bound_sentence` for over-long "sentences" (lengths in characters), and
:func:`segment_document`, the pure per-document function a Beam DoFn calls.
"""

from __future__ import annotations

import re

from ground.errors import UserError
from pipeline.segment.punkt import (
    PERIOD_CONTEXT_PATTERN,
    REALIGN_PATTERN,
    REGEX_WHITESPACE,
    SENT_END_CHARS,
    WORD_TOKENIZE_PATTERN,
    PunktSplitter,
)
from pipeline.segment.punkt_params import load_english, read_params

__all__ = [
    "CJK_LANGUAGES",
    "DEFAULT_MAX_SENTENCE_CHARS",
    "ENGLISH",
    "PERIOD_CONTEXT_PATTERN",
    "REALIGN_PATTERN",
    "REGEX_WHITESPACE",
    "SENT_END_CHARS",
    "WORD_TOKENIZE_PATTERN",
    "CjkSplitter",
    "PunktSplitter",
    "bound_sentence",
    "get_splitter",
    "segment_document",
    "split_cjk",
]


# --- languages without Punkt parameters -----------------------------------------------------
# Sentence-final punctuation of Japanese and Chinese (ideographic full stop, full-width and
# half-width forms). A mark inside 「」『』（）… does not end the sentence (「本当？」と言った。
# is one sentence); closing quotes/brackets right after a final mark stay with its sentence.
_CJK_FINAL = "\u3002\uff01\uff1f\uff0e\uff61!?"
_CJK_OPEN = "\u300c\u300e\uff08\u3010\u3014\u3008\u300a\uff3b\uff5b\u201c\u2018("
_CJK_CLOSE = "\u300d\u300f\uff09\u3011\u3015\u3009\u300b\uff3d\uff5d\u201d\u2019)"
_CJK_EVENT = re.compile(
    f"([{_CJK_FINAL}]+[{re.escape(_CJK_CLOSE)}\"']*)|([{re.escape(_CJK_OPEN)}])"
    f"|([{re.escape(_CJK_CLOSE)}])"
)


def split_cjk(text: str) -> list[str]:
    """Split Japanese/Chinese text after 。！？．｡!? (plus following closing marks).

    Marks inside brackets or quotes (depth > 0) do not split. Returns the stripped,
    non-empty sentences in order; linear time in ``len(text)``.
    """
    out = []
    start = depth = 0
    for m in _CJK_EVENT.finditer(text):
        if m.group(2) is not None:
            depth += 1
        elif m.group(3) is not None:
            depth = max(0, depth - 1)
        elif depth == 0:
            sentence = text[start : m.end()].strip()
            if sentence:
                out.append(sentence)
            start = m.end()
        else:
            # a final mark inside brackets; its trailing closers close brackets
            depth = max(0, depth - sum(c in _CJK_CLOSE for c in m.group(1)))
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


class CjkSplitter:
    """``splitter(text) -> list[str]`` for languages split on sentence-final punctuation."""

    def __init__(self, language: str):
        self.language = language

    def __reduce__(self):
        return (CjkSplitter, (self.language,))

    def __call__(self, text: str) -> list[str]:
        return split_cjk(text)


ENGLISH = ("english", "en")
CJK_LANGUAGES = {"japanese": "japanese", "ja": "japanese", "chinese": "chinese", "zh": "chinese"}


def get_splitter(language: str = "english", params_dir=None):
    """The sentence splitter for ``--language`` (and ``--punkt-params`` dir if given).

    - ``params_dir`` (a ``punkt_tab`` directory, e.g. trained by ``--punkt-train``): Punkt
      with those parameters, whatever the language name;
    - ``english``/``en``: Punkt with the English parameters shipped in the package;
    - ``japanese``/``ja``, ``chinese``/``zh``: :func:`split_cjk`;
    - anything else: UserError listing the choices.
    """

    name = (language or "").strip().lower()
    if params_dir is not None:
        return PunktSplitter(read_params(params_dir), language=name or "custom")
    if name in ENGLISH:
        return PunktSplitter(load_english(), language="english")
    if name in CJK_LANGUAGES:
        return CjkSplitter(CJK_LANGUAGES[name])
    raise UserError(
        f"unknown language {language!r}: choose english (en), japanese (ja) or chinese (zh), "
        "or train Punkt parameters for it on the corpus with --punkt-train"
    )


# --- the sentence length bound and the document function ------------------------------------
# A BERT sequence holds at most 512 WordPiece tokens; English averages ~4.5 characters per
# token, so 2000 characters (~450 tokens) keeps a sentence within one sequence. In the 17
# shared books it cuts only the two longest sentences (2,764 and 2,541 characters; the next
# is 1,374), and no Wikipedia sentence of the shared samples (longest 1,435).
DEFAULT_MAX_SENTENCE_CHARS = 2000


def bound_sentence(sentence: str, max_chars: int = DEFAULT_MAX_SENTENCE_CHARS) -> list[str]:
    """Cut ``sentence`` into pieces of at most ``max_chars`` characters, at spaces if possible.

    Each piece ends at the last whitespace inside its window when that keeps at least half
    the window, otherwise it is cut hard at ``max_chars``. Pieces are stripped and non-empty.
    Linear time in ``len(sentence)``. A sentence within the bound comes back as ``[sentence]``.
    """
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    if len(sentence) <= max_chars:
        return [sentence]
    pieces = []
    pos, n = 0, len(sentence)
    while pos < n:
        end = pos + max_chars
        if end >= n:
            end = n
        else:
            cut = sentence.rfind(" ", pos + max_chars // 2, end + 1)
            if cut > pos:
                end = cut
        piece = sentence[pos:end].strip()
        if piece:
            pieces.append(piece)
        pos = end
    return pieces


def segment_document(
    text: str, splitter, max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS
) -> tuple[list[list[str]], dict[str, int]]:
    """Split a document into paragraphs of sentences.

    Args:
        text: a document in the shared text model (``pipeline.common.textnorm``): paragraphs
            separated by ``"\\n"``.
        splitter: ``callable(paragraph) -> list[str]``, e.g. from :func:`get_splitter`.
        max_sentence_chars: longer "sentences" are cut by :func:`bound_sentence`.

    Returns:
        ``(paragraphs, stats)``: ``paragraphs`` is a list (one per non-empty paragraph, in
        order) of lists of sentences; ``stats`` counts ``paragraphs``, ``sentences``,
        ``chars`` (characters of the sentences), ``long_sentences`` (sentences over the
        bound) and ``cuts`` (extra pieces they were cut into), ``empty_paragraphs``.
    """
    stats = {
        "paragraphs": 0,
        "sentences": 0,
        "chars": 0,
        "long_sentences": 0,
        "cuts": 0,
        "empty_paragraphs": 0,
    }
    paragraphs = []
    for para in text.split("\n"):
        sentences = []
        for sentence in splitter(para):
            if len(sentence) > max_sentence_chars:
                pieces = bound_sentence(sentence, max_sentence_chars)
                stats["long_sentences"] += 1
                stats["cuts"] += len(pieces) - 1
                sentences.extend(pieces)
            elif sentence.strip():
                sentences.append(sentence)
        if sentences:
            paragraphs.append(sentences)
            stats["sentences"] += len(sentences)
            stats["chars"] += sum(len(s) for s in sentences)
        elif para.strip():
            stats["empty_paragraphs"] += 1
    stats["paragraphs"] = len(paragraphs)
    return paragraphs, stats
