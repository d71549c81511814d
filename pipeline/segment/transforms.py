"""Beam wiring of the segment stage: RUN/docs/<unit>.parquet -> RUN/sentences/<unit>.parquet."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from pipeline.common import fs
from pipeline.common.file_stage import basename
from pipeline.common.parquet_io import RecordWriter, iter_documents
from pipeline.segment import segment
from pipeline.segment.segment import segment_document

SENTENCE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("title", pa.string()),
        ("paragraphs", pa.list_(pa.list_(pa.string()))),
    ]
)


class SegmentFileFn(beam.DoFn):
    """Split every document of one docs file into paragraphs of sentences.

    The splitter is built in ``setup()``: Punkt with ``params`` (a
    :class:`pipeline.segment.punkt_params.PunktParams`, shipped English or trained on the
    corpus), or the CJK splitter for ``language`` in (ja, zh).
    """

    def __init__(self, run_dir: str, language: str, params, max_sentence_chars: int):
        self._run_dir = run_dir
        self._language = language
        self._params = params
        self._max_chars = max_sentence_chars

    def setup(self):

        if self._params is not None:
            self._splitter = segment.PunktSplitter(self._params, self._language)
        else:
            self._splitter = segment.get_splitter(self._language)

    def process(self, docs_path: str):

        counts = {"docs_in": 0, "docs_out": 0, "rejected_no_sentences": 0}
        out = fs.join(self._run_dir, "sentences", basename(docs_path))
        with RecordWriter(out, dict, SENTENCE_SCHEMA) as writer:
            for doc in iter_documents(docs_path):
                counts["docs_in"] += 1
                paragraphs, stats = segment_document(doc.text, self._splitter, self._max_chars)
                for k, v in stats.items():
                    counts[k] = counts.get(k, 0) + v
                if not paragraphs:
                    counts["rejected_no_sentences"] += 1
                    continue
                counts["docs_out"] += 1
                writer.write((doc.id, doc.source, doc.title, paragraphs))
        Metrics.counter("segment", "sentences").inc(counts.get("sentences", 0))
        yield counts
