"""Beam wiring of the vocab stage: word counts over RUN/docs, combined across workers.

Each docs file is counted by one DoFn (``word_counts.count_words`` with the final tokenizer's
own normaliser and pre-tokeniser), the per-file counts are summed per word with
``CombinePerKey(sum)`` (only words and integers are shuffled), and the totals are written once,
sorted, to ``RUN/vocab/counts.tsv``. The totals are gathered with
:class:`pipeline.common.portable.Collect`, not ``ToList`` (whose default is a side input that
Dask recomputes). Held-out documents (see :func:`is_heldout`) are not counted.
"""

from __future__ import annotations

import hashlib

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.common import fs, portable
from pipeline.common.parquet_io import iter_rows
from pipeline.vocab.files import counts_tsv_bytes
from pipeline.vocab.word_counts import count_words, make_pretokenizer

HELDOUT_PER_MILLE = 10  # 1% of documents, chosen by id, measure the vocab on unseen text


def is_heldout(doc_id: str, per_mille: int = HELDOUT_PER_MILLE) -> bool:
    """Whether a document is held out of vocab training (a fixed function of its id)."""
    h = int.from_bytes(hashlib.sha256(f"heldout\x00{doc_id}".encode()).digest()[:4], "big")
    return h % 1000 < per_mille


class CountFileFn(beam.DoFn):
    """Count the pre-tokenised words of one docs file: yields (word, count) pairs."""

    def __init__(self, lowercase: bool, strip_accents: bool | None):
        self._lowercase = lowercase
        self._strip_accents = strip_accents

    def setup(self):

        self._pretok = make_pretokenizer(self._lowercase, self._strip_accents)

    def process(self, docs_path: str):

        texts = (
            row["text"]
            for row in iter_rows(docs_path, columns=["id", "text"])
            if not is_heldout(row["id"])
        )
        counts = count_words(texts, self._pretok)
        Metrics.counter("vocab", "word_occurrences").inc(sum(counts.values()))
        yield from counts.items()


class _WriteCountsFn(beam.DoFn):
    def __init__(self, path: str):
        self._path = path

    def process(self, pairs: list):

        fs.write_bytes(self._path, counts_tsv_bytes(dict(pairs)))
        yield len(pairs)


class CountWords(beam.PTransform):
    """Docs file paths in; ``counts_path`` written with every word's total count."""

    def __init__(self, lowercase: bool, strip_accents: bool | None, counts_path: str):
        super().__init__()
        self._fn = CountFileFn(lowercase, strip_accents)
        self._path = counts_path

    def expand(self, paths):
        return (
            paths
            | "Spread" >> beam.Reshuffle()
            | "Count" >> beam.ParDo(self._fn)
            | "Sum" >> beam.CombinePerKey(sum)
            | "All" >> portable.Collect()
            | "Write" >> beam.ParDo(_WriteCountsFn(self._path))
        )
