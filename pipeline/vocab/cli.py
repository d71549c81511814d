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
import os
import sys
import tempfile

from ground.errors import UserError
from pipeline.common import beam_runner, fs, run_report
from pipeline.common.run_report import DONE_MARKER

HELDOUT_CHARS = 4_000_000  # held-out text read for the vocab report, at most


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


def _strip(args) -> bool | None:
    return {"auto": None, "yes": True, "no": False}[args.strip_accents]


def run(args: argparse.Namespace, extra: list[str]) -> int:
    run_dir = args.output.rstrip("/")
    beam_runner.check_args(extra)
    out_dir = fs.join(run_dir, "vocab")
    marker = fs.join(out_dir, DONE_MARKER)
    if fs.exists(marker) and not args.overwrite:
        raise UserError(f"{out_dir} is already complete; pass --overwrite to redo it")
    if args.vocab and args.extend:
        raise UserError("give --vocab or --extend, not both")
    if args.extend and args.add_terms <= 0:
        raise UserError("--extend needs --add-terms N with N > 0")
    lowercase, strip = not args.cased, _strip(args)
    fs.makedirs(out_dir)
    if args.vocab:
        tokens, counts = _existing(args.vocab, lowercase), None
        vocab_rep = {"source": "existing", "path": args.vocab}
    else:
        counts = count_words(run_dir, lowercase, strip, extra)
        tokens, vocab_rep = _train_or_extend(args, counts, lowercase)
    vocab_rep.update(_quality(run_dir, tokens, lowercase, strip, counts or {}))
    _publish(out_dir, tokens, lowercase, strip, counts, vocab_rep)
    run_report.update_run_report(run_dir, "vocab", vocab_rep)
    fs.write_bytes(marker, b"")
    print(
        f"vocab: {len(tokens)} entries -> {out_dir}; held-out tokens/word "
        f"{vocab_rep.get('tokens_per_word')}, UNK rate {vocab_rep.get('unk_rate')}"
    )
    return 0


def _existing(path: str, lowercase: bool) -> list[str]:
    from pipeline.vocab.files import load_vocab

    loaded = load_vocab(path)
    if loaded.lowercase is not None and loaded.lowercase != lowercase:
        raise UserError(
            f"{path} is {'uncased' if loaded.lowercase else 'cased'}; "
            f"{'drop' if loaded.lowercase else 'add'} --cased to match it"
        )
    return loaded.tokens


def count_words(run_dir: str, lowercase: bool, strip: bool | None, extra: list[str]) -> dict:
    """Run the Beam counting pipeline; returns {word: count} read back from counts.tsv."""
    import apache_beam as beam

    from pipeline.common import beam_runner
    from pipeline.common.file_stage import input_files
    from pipeline.vocab.transforms import CountWords

    docs = input_files(run_dir, "docs", "documents")
    counts_path = fs.join(run_dir, "vocab", "counts.tsv")
    beam_runner.run(
        lambda p: (
            p
            | "Docs" >> beam.Create(docs)
            | "CountWords" >> CountWords(lowercase, strip, counts_path)
        ),
        extra,
    )
    with fs.open_read(counts_path) as f:
        counts = {}
        for line in f.read().decode("utf-8").splitlines():
            word, _, n = line.rpartition("\t")
            counts[word] = int(n)
    if not counts:
        raise UserError(f"no words in {run_dir}/docs: the corpus is empty")
    return counts


def _train_or_extend(args, counts: dict, lowercase: bool) -> tuple[list[str], dict]:
    from pipeline.vocab import extend as vocab_extend
    from pipeline.vocab import wordpiece
    from pipeline.vocab.files import load_vocab

    if args.extend:
        base = load_vocab(args.extend).tokens
        tokens, added = vocab_extend.extend_vocab(base, counts, args.add_terms)
        return tokens, {
            "source": "extended",
            "base": args.extend,
            "added_terms": [a.word for a in added],
        }
    cfg = wordpiece.WordPieceConfig(
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        limit_alphabet=args.limit_alphabet,
        n_unused=args.unused,
        allow_smaller=args.allow_smaller_vocab,
    )
    trained = wordpiece.train_wordpiece(counts, cfg)
    return trained.tokens, {
        "source": "trained",
        "requested_size": args.vocab_size,
        "merges": trained.n_merges,
        "alphabet": trained.alphabet_size,
        "distinct_words": len(counts),
        "skipped_words": trained.skipped_words,
    }


def _sample_texts(run_dir: str, heldout: bool) -> list[str]:
    """Up to HELDOUT_CHARS of document text, held-out documents only or training ones only."""
    from pipeline.common.file_stage import input_files
    from pipeline.common.parquet_io import iter_rows
    from pipeline.vocab.transforms import is_heldout

    budget, texts = HELDOUT_CHARS, []
    for path in input_files(run_dir, "docs", "documents"):
        for row in iter_rows(path, columns=["id", "text"]):
            if is_heldout(row["id"]) == heldout and budget > 0:
                budget -= len(row["text"])
                texts.append(row["text"])
        if budget <= 0:
            break
    return texts


def _quality(run_dir, tokens, lowercase, strip, counts) -> dict:
    """Vocab figures on held-out documents (on training text when the corpus has none)."""
    from pipeline.vocab.files import build_tokenizer, vocab_report
    from pipeline.vocab.word_counts import make_pretokenizer

    tok = build_tokenizer(tokens, lowercase, strip)
    texts, measured_on = _sample_texts(run_dir, heldout=True), "held-out documents"
    if not texts:
        texts = _sample_texts(run_dir, heldout=False)
        measured_on = "training documents (the corpus is too small to hold any out)"
    rep = vocab_report(tok, counts, texts, make_pretokenizer(lowercase, strip))
    rep["lowercase"], rep["strip_accents"] = lowercase, strip
    rep["tokens_per_word_measured_on"] = measured_on
    return rep


def _publish(out_dir, tokens, lowercase, strip, counts, vocab_rep) -> None:
    """Write the vocab files locally, then publish each one atomically to ``out_dir``."""
    from pipeline.vocab.files import write_vocab_dir

    with tempfile.TemporaryDirectory(prefix="bertprep-vocab-") as tmp:
        write_vocab_dir(tmp, tokens, lowercase, strip, counts=counts, report=vocab_rep)
        for name in sorted(os.listdir(tmp)):
            fs.publish_local(os.path.join(tmp, name), fs.join(out_dir, name))
    print(
        f"vocab: wrote {', '.join(['vocab.txt', 'tokenizer.json'])} to {out_dir}", file=sys.stderr
    )
