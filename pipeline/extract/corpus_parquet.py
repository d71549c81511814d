"""Parquet corpus files: one row per record, read in record batches.

:func:`read_parquet` checks the schema first (the text column must exist and hold strings or
UTF-8 bytes: a :class:`~ground.errors.UserError` otherwise; the title and id columns are
optional), then reads ``batch_rows`` rows at a time, so memory is one batch. Keys are 0-based
row numbers. A null or non-UTF-8 text is a ``bad_record``; a file that is not Parquet, or
breaks off, gives one ``bad_file``. A non-seekable stream is copied to a temporary file first.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, BinaryIO

from ground.errors import UserError
from pipeline.common.records import Document, Dropped

if TYPE_CHECKING:
    from pipeline.extract.corpora import RecordMaker

COPY_CHUNK = 1 << 20  # bytes per copy when a stream must be spooled to a temporary file


def _readable_seekable(stream: BinaryIO, stack: ExitStack) -> BinaryIO:
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        return stream
    # A real temporary file, not a SpooledTemporaryFile: before Python 3.11 the latter lacks
    # readable()/seekable(), which pyarrow's file wrapper calls.
    spool = stack.enter_context(tempfile.TemporaryFile())
    shutil.copyfileobj(stream, spool, COPY_CHUNK)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def columns_to_read(schema, relpath: str, options) -> list[str]:
    """The columns to read from a file of this Arrow ``schema``: the text column, then the
    title and id columns it has (optional, like the JSON fields: absent means no title).

    Raises:
        UserError: no text column, or one that holds neither strings nor bytes.
    """
    import pyarrow as pa  # pyarrow: only Parquet corpora need it

    if options.text_field not in schema.names:
        raise UserError(
            f"corpus file {relpath!r} has no column {options.text_field!r} "
            f"(columns: {', '.join(schema.names)}); --text-field names the text column"
        )
    text_type = schema.field(options.text_field).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        if not (pa.types.is_binary(text_type) or pa.types.is_large_binary(text_type)):
            raise UserError(
                f"corpus file {relpath!r}: column {options.text_field!r} is {text_type}, "
                "not a string column"
            )
    optional = [f for f in (options.title_field, options.id_field) if f in schema.names]
    return [options.text_field, *optional]


def check_schema(stream: BinaryIO, relpath: str, options) -> None:
    """:func:`columns_to_read`'s check from the file's footer alone, for the launcher to run
    before any worker starts (a wrong ``--text-field`` is one line, not a failed pipeline).
    A file that is not readable Parquet passes: the reader counts it as ``bad_file``."""
    import pyarrow as pa  # pyarrow: only Parquet corpora need it
    import pyarrow.parquet as pq  # (the same)

    with ExitStack() as stack:
        try:
            schema = pq.ParquetFile(_readable_seekable(stream, stack)).schema_arrow
        except (pa.ArrowException, ValueError, OSError):
            return
        columns_to_read(schema, relpath, options)


def read_parquet(
    stream: BinaryIO, make: RecordMaker, stack: ExitStack
) -> Iterator[Document | Dropped]:
    """Every row of one Parquet file as a record; a temporary copy, if any, lives in ``stack``."""
    import pyarrow as pa  # pyarrow: only Parquet corpora need it
    import pyarrow.parquet as pq  # (the same)

    options = make.options
    try:
        pfile = pq.ParquetFile(_readable_seekable(stream, stack))
    except (pa.ArrowException, ValueError) as exc:
        yield make.drop("bad_file:0", "bad_file", f"not a readable Parquet file: {exc}")
        return
    fields = columns_to_read(pfile.schema_arrow, make.relpath, options)
    columns = list(dict.fromkeys(fields))
    row = 0
    try:
        for batch in pfile.iter_batches(batch_size=options.batch_rows, columns=columns):
            data = {name: batch.column(name).to_pylist() for name in columns}
            for i in range(batch.num_rows):
                record = {name: data[name][i] for name in columns}
                yield _parquet_row(row, record, make)
                row += 1
    except (pa.ArrowException, OSError) as exc:
        yield make.drop(f"bad_file:{row}", "bad_file", f"unreadable from row {row}: {exc}")


def _parquet_row(row: int, record: dict, make: RecordMaker) -> Document | Dropped:
    title = make.title(record)
    text = record[make.options.text_field]
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return make.drop(row, "bad_record", f"row {row}: not UTF-8 ({exc.reason})", title)
    if text is None:
        return make.drop(
            row, "bad_record", f"row {row}: {make.options.text_field!r} is null", title
        )
    if len(text) > make.options.max_record_bytes:  # characters: a cheap lower bound on bytes
        return make.drop(row, "too_large", f"row {row}: over the record limit", title)
    return make.doc(row, text, title)
