"""Train a WordPiece vocabulary on RUN/docs, or take an existing one: RUN/vocab.

Words are counted in Beam after the final tokenizer's own normaliser and pre-tokeniser (HF
tokenizers' BertNormalizer + BertPreTokenizer), summed across workers, and WordPiece is trained
from those counts by a deterministic merge loop (HF's rules, ties broken by token id), so the
vocab is byte-identical across runs and worker counts. 1% of documents (chosen by id) are held
out to measure tokens per word and the UNK rate.

Id layout: [PAD]=0, [unused0..U-1]=1..U (--unused U), [UNK] [CLS] [SEP] [MASK], then single
characters, ##characters, then merged pieces in merge order.

--vocab PATH reuses vocab.txt/tokenizer.json (e.g. Google's bert-base-uncased) instead of
training; --extend BASE --add-terms N fills BASE's [unusedN] slots with the N corpus words BASE
splits worst, for continued pretraining of an existing BERT on a domain corpus.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from pipeline.vocab.stage import VocabOptions, run_vocab


def add_vocab_arguments(parser: argparse.ArgumentParser) -> None:
    """Vocab flags shared by ``vocab`` and ``build``."""
    g = parser.add_argument_group("vocabulary")
    g.add_argument(
        "--vocab",
        metavar="PATH",
        help="use this vocab.txt or tokenizer.json instead of training one",
    )
    g.add_argument(
        "--extend",
        metavar="BASE_VOCAB",
        help="start from this vocab.txt and fill its [unusedN] slots (--add-terms)",
    )
    g.add_argument(
        "--add-terms",
        type=int,
        default=0,
        metavar="N",
        help="with --extend: how many corpus words to add",
    )
    g.add_argument(
        "--vocab-size",
        type=int,
        default=30522,
        help="entries including specials (default 30522; a multiple of 8, e.g. "
        "30528, is faster on GPUs)",
    )
    g.add_argument("--cased", action="store_true", help="keep case (default: lowercase)")
    g.add_argument(
        "--strip-accents",
        choices=("auto", "yes", "no"),
        default="auto",
        help="auto = strip when lowercasing, as BERT does (default auto)",
    )
    g.add_argument(
        "--min-frequency",
        type=int,
        default=2,
        help="a merge needs a pair seen at least this often (default 2)",
    )
    g.add_argument(
        "--limit-alphabet",
        type=int,
        default=1000,
        help="keep at most this many single characters (default 1000)",
    )
    g.add_argument(
        "--unused",
        type=int,
        default=0,
        metavar="U",
        help="reserve [unused0..U-1] at ids 1..U for later domain terms (default 0)",
    )
    g.add_argument(
        "--allow-smaller-vocab",
        action="store_true",
        help="accept a smaller vocab when the corpus cannot fill --vocab-size",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_vocab_arguments(parser)
    parser.add_argument(
        "--output",
        required=True,
        metavar="RUN",
        help="run directory holding docs/ (from bertprep extract)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo the vocab even if RUN/vocab is complete"
    )


def options_from_args(args: argparse.Namespace) -> VocabOptions:
    """The stage's options from parsed flags (validated by :func:`run_vocab`)."""
    return VocabOptions(**{f.name: getattr(args, f.name) for f in fields(VocabOptions)})


def run(args: argparse.Namespace, extra: list[str]) -> int:
    run_dir = args.output.rstrip("/")
    rep = run_vocab(options_from_args(args), run_dir, args.overwrite, extra)
    print(
        f"vocab: {rep['vocab_size']} entries -> {run_dir}/vocab; held-out tokens/word "
        f"{rep.get('tokens_per_word')}, UNK rate {rep.get('unk_rate')}"
    )
    return 0
