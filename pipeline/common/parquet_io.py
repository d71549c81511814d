"""Parquet files for records that pass between stages (documents, dropped documents).

Writers stream rows into a local temporary Parquet file in row groups (bounded memory) and
publish it atomically through :mod:`pipeline.common.fs`. Output bytes depend only on the rows
written: no timestamps, fixed compression, fixed row-group size.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.common import fs
from pipeline.common.records import Document, Dropped

DOC_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("path", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("page_id", pa.int64()),
    ]
)
DROPPED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("path", pa.string()),
        ("title", pa.string()),
        ("kind", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)
_SCHEMAS = {Document: DOC_SCHEMA, Dropped: DROPPED_SCHEMA}
ROW_GROUP_BYTES = 32 << 20  # flush a row group once this much text is buffered
ROW_GROUP_ROWS = 20_000


class RecordWriter:
    """Stream dataclass records of one type into a Parquet file at ``path`` (any filesystem).

    Use as a context manager; the file appears at ``path`` only when the block exits without
    an exception. ``count`` is the number of rows written.
    """

    def __init__(self, path: str, record_type: type, schema: pa.Schema | None = None):
        self.path = path
        self.schema = schema or _SCHEMAS[record_type]
        self._names = self.schema.names
        self._rows: list[tuple] = []
        self._bytes = 0
        self.count = 0
        fd, self._local = tempfile.mkstemp(suffix=".parquet", prefix="bertprep-")
        os.close(fd)
        self._writer = pq.ParquetWriter(
            self._local, self.schema, compression="zstd", write_statistics=False
        )

    def write(self, record) -> None:
        """Buffer one record (a dataclass instance or a dict with the schema's fields)."""
        row = dataclasses.astuple(record) if dataclasses.is_dataclass(record) else record
        if isinstance(row, dict):
            row = tuple(row[n] for n in self._names)
        self._rows.append(row)
        self._bytes += _text_bytes(row)
        self.count += 1
        if self._bytes >= ROW_GROUP_BYTES or len(self._rows) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        columns = list(zip(*self._rows))
        table = pa.table(
            [pa.array(col, type=f.type) for col, f in zip(columns, self.schema)],
            schema=self.schema,
        )
        self._writer.write_table(table)
        self._rows, self._bytes = [], 0

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._flush()
        self._writer.close()
        if exc_type is None:
            fs.publish_local(self._local, self.path)
        elif os.path.exists(self._local):
            os.unlink(self._local)


def _text_bytes(value) -> int:
    """Approximate in-memory size of the text in a row (strings, nested lists of strings)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_text_bytes(v) for v in value)
    return 8


def write_records(path: str, records: Iterable, record_type: type) -> int:
    """Write all ``records`` to ``path``; returns the row count."""
    with RecordWriter(path, record_type) as writer:
        for rec in records:
            writer.write(rec)
    return writer.count


def iter_rows(
    path: str, columns: list[str] | None = None, batch_rows: int = 2048
) -> Iterator[dict]:
    """Yield rows of a Parquet file as dicts, batch by batch (bounded memory)."""
    with fs.open_read(path) as f:
        pf = pq.ParquetFile(f)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            yield from batch.to_pylist()


def column_names(path: str) -> list[str] | None:
    """The column names of a Parquet file (its footer only), or None if it is not Parquet."""
    with fs.open_read(path) as f:
        try:
            return list(pq.ParquetFile(f).schema_arrow.names)
        except (pa.ArrowInvalid, OSError):
            return None


def iter_documents(path: str) -> Iterator[Document]:
    """Yield the :class:`Document` rows of a documents Parquet file."""
    for row in iter_rows(path):
        yield Document(**{k: row[k] for k in DOC_SCHEMA.names})
