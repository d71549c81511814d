"""Vocab files: ``vocab.txt``, ``tokenizer.json``, the word counts, the report; reading them back.

``vocab.txt`` is BERT's format: one token per line, UTF-8, ``\\n`` line ends, id = line number
(0-based). ``tokenizer.json`` is an HF ``tokenizers`` WordPiece tokenizer made of the same
parts as ``transformers.BertTokenizerFast`` (``BertNormalizer``, ``BertPreTokenizer``, WordPiece
with ``[UNK]``, ``##`` and 100 characters per word at most, ``[CLS] A [SEP] B [SEP]``
template, WordPiece decoder), so both libraries load it and give the same ids. The counts file
is ``word<TAB>count`` lines sorted by count descending, then word. Every write is atomic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ground.atomic import write_bytes
from ground.errors import UserError
from pipeline.vocab.word_counts import Pretokenizer
from pipeline.vocab.wordpiece import CLS, PREFIX, SEP, SPECIAL_TOKENS, UNK
from sharding.vocab import check_tokens, parse_vocab_txt, read_text

MAX_INPUT_CHARS_PER_WORD = 100  # BERT's: a longer word becomes [UNK]


def vocab_txt_bytes(tokens: list[str]) -> bytes:
    """``vocab.txt`` content: one token per line, ``\\n`` after each."""
    check_tokens(tokens)
    return "".join(t + "\n" for t in tokens).encode("utf-8")


def build_tokenizer(tokens: list[str], lowercase: bool, strip_accents: bool | None = None):
    """An HF ``tokenizers.Tokenizer`` for a BERT WordPiece vocab (``tokens[i]`` has id ``i``).

    Built exactly like ``transformers.BertTokenizerFast`` builds its backend; the five special
    tokens are registered as special added tokens (never split, skipped when decoding).
    """
    from tokenizers import (  # tokenizers (Rust): loaded where text is tokenized
        AddedToken,
        Tokenizer,
        decoders,
        normalizers,
        pre_tokenizers,
    )
    from tokenizers.models import WordPiece  # tokenizers (Rust): loaded where text is tokenized
    from tokenizers.processors import (
        TemplateProcessing,  # tokenizers (Rust): loaded where text is tokenized
    )

    check_tokens(tokens)
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(
        WordPiece(
            vocab,
            unk_token=UNK,
            continuing_subword_prefix=PREFIX,
            max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
        )
    )
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=strip_accents,
        lowercase=bool(lowercase),
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix=PREFIX)
    tok.post_processor = TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def counts_tsv_bytes(counts: Mapping[str, int]) -> bytes:
    """The counts file: ``word\\tcount\\n`` sorted by count descending, then word."""
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for word, _ in rows:
        if not word or any(c in word for c in "\t\n\r"):
            raise ValueError(f"word {word!r} cannot be written to a TSV line")
    return "".join(f"{w}\t{c}\n" for w, c in rows).encode("utf-8")


def read_counts(path: str | os.PathLike) -> dict[str, int]:
    """Read a counts file written by :func:`counts_tsv_bytes`; :class:`UserError` if malformed."""
    counts: dict[str, int] = {}
    for n, line in enumerate(read_text(path, "counts file").split("\n"), 1):
        if not line:
            continue
        word, tab, count = line.partition("\t")
        if not tab or not word or not count.isdigit() or word in counts:
            raise UserError(f"{path}:{n}: expected a new 'word<TAB>count' line, got {line!r}")
        counts[word] = int(count)
    return counts


def write_vocab_dir(
    out_dir: str | os.PathLike,
    tokens: list[str],
    lowercase: bool,
    strip_accents: bool | None,
    counts: Mapping[str, int] | None = None,
    report: Mapping | None = None,
) -> None:
    """Write ``vocab.txt``, ``tokenizer.json`` and, if given, ``counts.tsv`` and ``report.json``."""
    out = Path(out_dir)
    write_bytes(out / "vocab.txt", vocab_txt_bytes(tokens))
    tok_json = build_tokenizer(tokens, lowercase, strip_accents).to_str(pretty=True)
    write_bytes(out / "tokenizer.json", (tok_json + "\n").encode("utf-8"))
    if counts is not None:
        write_bytes(out / "counts.tsv", counts_tsv_bytes(counts))
    if report is not None:
        text = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        write_bytes(out / "report.json", text.encode("utf-8"))


@dataclass(frozen=True)
class VocabFile:
    """A vocab read from disk; ``lowercase``/``strip_accents`` come from a tokenizer.json's
    normaliser (``None`` for a vocab.txt, which does not say)."""

    tokens: list[str]
    lowercase: bool | None = None
    strip_accents: bool | None = None


def load_vocab(path: str | os.PathLike) -> VocabFile:
    """Read a BERT ``vocab.txt`` or an HF WordPiece ``tokenizer.json`` (by content: JSON object).

    A vocab.txt line end may be ``\\n`` or ``\\r\\n``; one final line end is optional.
    Raises :class:`UserError` for an unreadable, non-UTF-8, empty or malformed file (see
    :func:`check_tokens`), or a tokenizer.json that is not a WordPiece tokenizer with ids
    ``0..n-1``.
    """
    text = read_text(path)
    if text.lstrip().startswith("{"):
        return _load_tokenizer_json(path, text)
    tokens = parse_vocab_txt(text)
    check_tokens(tokens, str(path))
    return VocabFile(tokens)


def _load_tokenizer_json(path, text: str) -> VocabFile:
    try:
        model = json.loads(text)["model"]
        if model.get("type") != "WordPiece":
            raise UserError(f"{path}: model type {model.get('type')!r}, expected WordPiece")
        vocab = model["vocab"]
        ids = sorted(vocab.values())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: not a tokenizer.json with a WordPiece vocab ({exc})") from None
    if ids != list(range(len(ids))):
        raise UserError(f"{path}: vocab ids are not 0..{len(ids) - 1} without gaps")
    tokens = [""] * len(ids)
    for tok, i in vocab.items():
        tokens[i] = tok
    check_tokens(tokens, str(path))
    norm = json.loads(text).get("normalizer") or {}
    if norm.get("type") == "BertNormalizer":
        return VocabFile(tokens, bool(norm.get("lowercase")), norm.get("strip_accents"))
    return VocabFile(tokens)


def tokenizer_from_vocab(path: str | os.PathLike, lowercase: bool, strip_accents=None):
    """The tokenizer for an existing vocab (``--vocab PATH``), built by :func:`build_tokenizer`.

    Raises :class:`UserError` if the file is malformed, or if it is a tokenizer.json whose
    BERT normaliser disagrees with ``lowercase``.
    """
    vf = load_vocab(path)
    if vf.lowercase is not None and vf.lowercase != bool(lowercase):
        raise UserError(
            f"{path} was built with lowercase={vf.lowercase} but lowercase={bool(lowercase)} "
            "was asked for: pass the matching cased/uncased option"
        )
    return build_tokenizer(vf.tokens, lowercase, strip_accents)


def vocab_report(
    tokenizer,
    counts: Mapping[str, int],
    heldout_texts: Iterable[str],
    pretokenize: Pretokenizer,
) -> dict:
    """Quality figures of a vocab.

    Returns a dict: ``vocab_size`` (entries); ``train_word_coverage`` (fraction of training word
    occurrences whose word is one whole vocab entry); on the held-out texts ``heldout_words``
    (pre-tokenised words), ``heldout_tokens`` (WordPiece tokens, no [CLS]/[SEP]),
    ``tokens_per_word`` and ``unk_rate`` (fraction of words that became [UNK]; WordPiece maps a
    word it cannot split to a single [UNK]).
    """
    vocab = tokenizer.get_vocab()
    total = sum(counts.values())
    whole = sum(c for w, c in counts.items() if w in vocab)
    unk_id = vocab[UNK]
    words = tokens = unks = 0
    for text in heldout_texts:
        words += len(pretokenize(text))
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        tokens += len(ids)
        unks += sum(1 for i in ids if i == unk_id)
    return {
        "vocab_size": tokenizer.get_vocab_size(),
        "train_word_coverage": round(whole / total, 6) if total else 0.0,
        "heldout_words": words,
        "heldout_tokens": tokens,
        "tokens_per_word": round(tokens / words, 6) if words else 0.0,
        "unk_rate": round(unks / words, 6) if words else 0.0,
    }
