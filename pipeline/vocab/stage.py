"""The vocab stage: count words over RUN/docs in Beam, train (or import, or extend) a WordPiece
vocab, measure it on held-out documents, publish RUN/vocab.

The id layout and the determinism rules are in :mod:`pipeline.vocab.cli` (the command's help)
and :mod:`pipeline.vocab.wordpiece`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass

from ground.errors import UserError
from pipeline.common import beam_runner, fs, run_report
from pipeline.common.file_stage import input_files
from pipeline.common.parquet_io import iter_rows
from pipeline.common.run_report import DONE_MARKER
from pipeline.vocab import extend as vocab_extend
from pipeline.vocab import wordpiece
from pipeline.vocab.files import build_tokenizer, load_vocab, vocab_report, write_vocab_dir
from pipeline.vocab.transforms import CountWords, is_heldout
from pipeline.vocab.word_counts import make_pretokenizer

HELDOUT_CHARS = 4_000_000  # held-out text read for the vocab report, at most


@dataclass(frozen=True)
class VocabOptions:
    """Options of the vocab stage: one field per flag of ``vocab.cli.add_vocab_arguments``.

    Field names are the flags' argparse names, so ``build``'s fingerprint of this dataclass
    is the one it recorded from the flags before the dataclass existed.

    Attributes:
        vocab: an existing vocab.txt / tokenizer.json to use instead of training (or None).
        extend: a base vocab.txt whose ``[unusedN]`` slots are filled (or None).
        add_terms: with ``extend``: how many corpus words to add.
        vocab_size: entries including specials.
        cased: keep case (BERT's default is to lowercase).
        strip_accents: ``auto`` (strip when lowercasing), ``yes`` or ``no``.
        min_frequency: a merge needs a pair seen at least this often.
        limit_alphabet: at most this many single characters.
        unused: ``[unused0..U-1]`` reserved at ids 1..U.
        allow_smaller_vocab: accept fewer entries when the corpus cannot fill ``vocab_size``.
    """

    vocab: str | None = None
    extend: str | None = None
    add_terms: int = 0
    vocab_size: int = 30522
    cased: bool = False
    strip_accents: str = "auto"
    min_frequency: int = 2
    limit_alphabet: int = 1000
    unused: int = 0
    allow_smaller_vocab: bool = False

    @property
    def lowercase(self) -> bool:
        return not self.cased

    @property
    def strip(self) -> bool | None:
        """BertNormalizer's ``strip_accents``: None = follow lowercase."""
        return {"auto": None, "yes": True, "no": False}[self.strip_accents]


def run_vocab(opts: VocabOptions, run_dir: str, overwrite: bool, extra: list[str]) -> dict:
    """Train (or import, or extend) the vocab into RUN/vocab; returns the vocab report.

    ``extra``: Beam pipeline arguments for the word-counting pipeline.
    """
    beam_runner.check_args(extra)
    out_dir = fs.join(run_dir, "vocab")
    marker = fs.join(out_dir, DONE_MARKER)
    if fs.exists(marker) and not overwrite:
        raise UserError(f"{out_dir} is already complete; pass --overwrite to redo it")
    if opts.vocab and opts.extend:
        raise UserError("give --vocab or --extend, not both")
    if opts.extend and opts.add_terms <= 0:
        raise UserError("--extend needs --add-terms N with N > 0")
    lowercase, strip = opts.lowercase, opts.strip
    fs.makedirs(out_dir)
    if opts.vocab:
        tokens, counts = _existing(opts.vocab, lowercase), None
        vocab_rep = {"source": "existing", "path": opts.vocab}
    else:
        counts = count_words(run_dir, lowercase, strip, extra)
        tokens, vocab_rep = _train_or_extend(opts, counts, lowercase)
    vocab_rep.update(_quality(run_dir, tokens, lowercase, strip, counts or {}))
    _publish(out_dir, tokens, lowercase, strip, counts, vocab_rep)
    run_report.update_run_report(run_dir, "vocab", vocab_rep)
    fs.delete(fs.stale_temps(out_dir))  # left by an interrupted earlier run
    fs.write_bytes(marker, b"")
    return vocab_rep


def _existing(path: str, lowercase: bool) -> list[str]:

    loaded = load_vocab(path)
    if loaded.lowercase is not None and loaded.lowercase != lowercase:
        raise UserError(
            f"{path} is {'uncased' if loaded.lowercase else 'cased'}; "
            f"{'drop' if loaded.lowercase else 'add'} --cased to match it"
        )
    return loaded.tokens


def count_words(run_dir: str, lowercase: bool, strip: bool | None, extra: list[str]) -> dict:
    """Run the Beam counting pipeline; returns {word: count} read back from counts.tsv."""
    import apache_beam as beam  # Beam (~1 s): only once a pipeline is built

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


def _train_or_extend(opts: VocabOptions, counts: dict, lowercase: bool) -> tuple[list[str], dict]:

    if opts.extend:
        base = load_vocab(opts.extend).tokens
        tokens, added = vocab_extend.extend_vocab(base, counts, opts.add_terms)
        return tokens, {
            "source": "extended",
            "base": opts.extend,
            "added_terms": [a.word for a in added],
        }
    cfg = wordpiece.WordPieceConfig(
        vocab_size=opts.vocab_size,
        min_frequency=opts.min_frequency,
        limit_alphabet=opts.limit_alphabet,
        n_unused=opts.unused,
        allow_smaller=opts.allow_smaller_vocab,
    )
    trained = wordpiece.train_wordpiece(counts, cfg)
    return trained.tokens, {
        "source": "trained",
        "requested_size": opts.vocab_size,
        "merges": trained.n_merges,
        "alphabet": trained.alphabet_size,
        "distinct_words": len(counts),
        "skipped_words": trained.skipped_words,
    }


def _sample_texts(run_dir: str, heldout: bool) -> list[str]:
    """Up to HELDOUT_CHARS of document text, held-out documents only or training ones only."""

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

    with tempfile.TemporaryDirectory(prefix="bertprep-vocab-") as tmp:
        write_vocab_dir(tmp, tokens, lowercase, strip, counts=counts, report=vocab_rep)
        for name in sorted(os.listdir(tmp)):
            fs.publish_local(os.path.join(tmp, name), fs.join(out_dir, name))
    print(
        f"vocab: wrote {', '.join(['vocab.txt', 'tokenizer.json'])} to {out_dir}", file=sys.stderr
    )
