"""Users' corpora (JSONL, Parquet, plain text) built from real sentences: SST-2 dev and the
paragraphs of Pride and Prejudice. Every test checks that records in == docs + dropped."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from ground.errors import UserError
from pipeline.common.records import CORPUS, REJECTED, Document, Dropped, doc_id
from pipeline.extract import corpora, corpus_lines
from pipeline.extract.corpora import CorpusOptions, iter_corpus
from tests.conftest import CORPUS as CORPUS_DIR
from tests.conftest import book_bytes, gutenberg


def sst2() -> list[str]:
    """The 872 SST-2 dev sentences, as written in the TSV (trailing space removed)."""
    with open(CORPUS_DIR / "finetune" / "glue-sst2-dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["sentence", "label"] and len(rows) == 873
    return [row[0].strip() for row in rows[1:]]


def pride_blocks() -> list[list[str]]:
    """Blank-line-separated blocks of Pride and Prejudice between its Gutenberg markers."""
    raw = book_bytes(gutenberg("1342.txt")).decode("ascii")
    lines = raw.splitlines()
    body = lines[21 : 13069 - 1]  # marker lines 21 and 13069, from books.tsv
    blocks, cur = [], []
    for line in [*body, ""]:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            blocks.append(cur)
            cur = []
    return blocks


def run(data: bytes, relpath: str, options: CorpusOptions | None = None) -> list:
    return list(iter_corpus(io.BytesIO(data), relpath, options or CorpusOptions()))


def label(record: Document | Dropped) -> str:
    return record.text if isinstance(record, Document) else f"<{record.reason}>"


def reasons(records: list) -> Counter:
    return Counter(r.reason for r in records if isinstance(r, Dropped))


def docs(records: list) -> list[Document]:
    return [r for r in records if isinstance(r, Document)]


def jsonl(objs: list) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_jsonl_sst2(suffix: str) -> None:
    sentences = sst2()
    data = jsonl([{"text": s, "label": i % 2} for i, s in enumerate(sentences)])
    blob = {
        "": data,
        ".gz": gzip.compress(data, mtime=0),
        ".zst": zstandard.ZstdCompressor().compress(data),
    }[suffix]
    relpath = f"domain/sst2.jsonl{suffix}"
    out = run(blob, relpath)
    assert [d.text for d in docs(out)] == [" ".join(s.split()) for s in sentences]
    assert len(out) == 872 and not reasons(out)
    assert [d.id for d in out] == [doc_id(CORPUS, relpath, n) for n in range(872)]
    assert all(d.source == CORPUS and d.path == relpath and d.title == "" for d in out)
    # No trailing newline, CRLF line ends and a BOM read the same.
    crlf = b"\xef\xbb\xbf" + data.rstrip(b"\n").replace(b"\n", b"\r\n")
    assert run(crlf, "domain/sst2.jsonl") == run(data, "domain/sst2.jsonl")


def test_jsonl_fields_configurable() -> None:
    sentences = sst2()[:50]
    objs = [{"body": s, "name": f"review {i}", "uid": 1000 + i} for i, s in enumerate(sentences)]
    out = run(jsonl(objs), "r.ndjson", CorpusOptions(text_field="body", title_field="name"))
    assert [d.title for d in out] == [f"review {i}" for i in range(50)]
    out = run(jsonl(objs), "r.ndjson", CorpusOptions(text_field="body", id_field="uid"))
    assert [d.title for d in out] == [str(1000 + i) for i in range(50)]
    assert out[7].id == doc_id(CORPUS, "r.ndjson", 7)  # ids follow the id rule, not "uid"
    out = run(jsonl(objs), "r.ndjson")  # default field "text" is absent everywhere
    assert reasons(out) == Counter(bad_record=50)


def test_jsonl_bad_records_counted() -> None:
    good = sst2()[:20]
    lines = [json.dumps({"text": s}).encode() for s in good]
    bad = {
        3: b'{"text": "unterminated',  # malformed JSON
        6: b'{"title": "no text field"}',  # missing field
        9: b'{"text": 42}',  # not a string
        12: b'["text", "an array"]',  # not an object
        15: b'{"text": "caf\xe9 au lait"}',  # latin-1 byte: not UTF-8
        18: b'{"text": "   \\u200b  "}',  # nothing left after normalisation
    }
    for n, line in bad.items():
        lines.insert(n, line)
    lines.insert(1, b"   ")  # blank lines are not records
    data = b"\n".join(lines) + b"\n\n"
    out = run(data, "mixed.jsonl")
    records_in = sum(1 for line in data.split(b"\n") if line.strip())
    assert records_in == 26 == len(out)
    assert reasons(out) == Counter(bad_record=5, empty=1)
    assert [d.text for d in docs(out)] == [" ".join(s.split()) for s in good]
    dropped = [r for r in out if isinstance(r, Dropped)]
    assert all(r.kind == REJECTED and r.source == CORPUS for r in dropped)
    numbers = [n + 1 for n in sorted(bad)]  # shifted by the blank line inserted at 1
    assert [r.id for r in dropped] == [doc_id(CORPUS, "mixed.jsonl", n) for n in numbers]
    details = " ".join(r.detail for r in dropped)
    for word in ("not JSON", "'text' missing", "not a string", "not a JSON object", "not UTF-8"):
        assert word in details
    # line numbers in the reasons are 1-based, as an editor shows them (ids keep their keys)
    malformed = next(r for r in dropped if "not JSON" in r.detail)
    assert malformed.detail.startswith(f"line {numbers[0] + 1}: ")
    assert data.split(b"\n")[numbers[0]] == b'{"text": "unterminated'


def test_json_array_is_a_user_error() -> None:
    data = json.dumps([{"text": s} for s in sst2()[:3]], indent=1).encode()
    with pytest.raises(UserError, match="JSON array"):
        run(data, "array.json")


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_truncated_compressed_file(suffix: str) -> None:
    # ~700 kB of paragraphs: many zstd blocks and several gzip chunks before the cut.
    sentences = [" ".join(b) for b in pride_blocks()]
    data = jsonl([{"text": s} for s in sentences])
    if suffix == ".gz":
        blob = gzip.compress(data, mtime=0)
    else:
        blob = zstandard.ZstdCompressor().compress(data)
    out = run(blob[: len(blob) // 2], f"cut.jsonl{suffix}")
    assert reasons(out) == Counter(bad_file=1) and isinstance(out[-1], Dropped)
    texts = [d.text for d in docs(out)]
    assert 0 < len(texts) < len(sentences)
    assert texts == [" ".join(s.split()) for s in sentences[: len(texts)]]
    assert run(b"not compressed at all" * 10, f"junk.jsonl{suffix}")[0].reason == "bad_file"


def write_parquet(path: Path, table: pa.Table) -> bytes:
    pq.write_table(table, path, row_group_size=300)
    return path.read_bytes()


def test_parquet(tmp_path: Path) -> None:
    sentences = sst2()
    texts = [*sentences[:500], None, *sentences[500:]]
    table = pa.table({"sentence": texts, "label": list(range(len(texts)))})
    raw = write_parquet(tmp_path / "sst2.parquet", table)
    opts = CorpusOptions(text_field="sentence", title_field="label", batch_rows=128)
    out = list(iter_corpus(tmp_path / "sst2.parquet", "sst2.parquet", opts))
    assert len(out) == 873 and reasons(out) == Counter(bad_record=1)
    assert [d.text for d in docs(out)] == [" ".join(s.split()) for s in sentences]
    assert out[500].id == doc_id(CORPUS, "sst2.parquet", 500) and out[500].title == "500"
    assert out[872].id == doc_id(CORPUS, "sst2.parquet", 872)

    class Pipe(io.BytesIO):  # a non-seekable stream (e.g. a pipe): spooled first
        def seekable(self) -> bool:
            return False

    assert list(iter_corpus(Pipe(raw), "sst2.parquet", opts)) == out
    no_title = CorpusOptions(text_field="sentence", title_field="title", id_field="uid")
    assert [
        d.title for d in docs(list(iter_corpus(io.BytesIO(raw), "sst2.parquet", no_title)))
    ] == [""] * 872  # optional columns that the file lacks: no titles, not an error
    with pytest.raises(UserError, match="no column 'text'.*sentence, label"):
        list(iter_corpus(io.BytesIO(raw), "sst2.parquet"))
    with pytest.raises(UserError, match="not a string column"):
        list(iter_corpus(io.BytesIO(raw), "sst2.parquet", CorpusOptions(text_field="label")))
    assert run(raw[: len(raw) // 2], "cut.parquet")[0].reason == "bad_file"


def test_parquet_binary_column_non_utf8(tmp_path: Path) -> None:
    good = [s.encode() for s in sst2()[:10]]
    table = pa.table({"text": pa.array([*good, b"caf\xe9"], type=pa.binary())})
    out = list(iter_corpus(io.BytesIO(write_parquet(tmp_path / "b.parquet", table)), "b.parquet"))
    assert len(out) == 11 and reasons(out) == Counter(bad_record=1)
    raw = (tmp_path / "b.parquet").read_bytes()
    out = list(iter_corpus(io.BytesIO(raw), "b.parquet", CorpusOptions(max_record_bytes=40)))
    long = sum(len(s) > 40 for s in good)
    assert long > 0 and reasons(out) == Counter(bad_record=1, too_large=long)


def test_text_line_mode() -> None:
    sentences = sst2()
    lines = []
    for i, s in enumerate(sentences):
        lines.append(s)
        if i % 7 == 0:
            lines.append("")  # blank lines are not documents
    data = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
    out = run(data, "sst2.txt")
    assert [d.text for d in out] == [" ".join(s.split()) for s in sentences]
    assert out[1].id == doc_id(CORPUS, "sst2.txt", 2)  # line 1 is blank
    zst = zstandard.ZstdCompressor().compress(data)
    assert [d.text for d in run(zst, "sst2.txt.zst")] == [d.text for d in out]


def test_text_blank_mode_bert_format() -> None:
    blocks = pride_blocks()
    data = ("\n\n".join("\n".join(b) for b in blocks) + "\n").encode()
    out = run(data, "pride.text", CorpusOptions(text_mode="blank"))
    assert len(out) == len(blocks) and not reasons(out)
    assert [d.text for d in out] == ["\n".join(" ".join(x.split()) for x in b) for b in blocks]
    # Hard-wrapped paragraphs: unwrap joins each block into one line.
    unwrapped = run(data, "pride.text", CorpusOptions(text_mode="blank", unwrap=True))
    assert [d.text for d in unwrapped] == [" ".join(" ".join(b).split()) for b in blocks]
    second = len(blocks[0]) + 1  # line number of the second block's first line
    assert out[1].id == doc_id(CORPUS, "pride.text", second)


def test_text_non_utf8_line_and_counts() -> None:
    sentences = sst2()[:30]
    raw = [s.encode() for s in sentences]
    raw[4] = b"a na\xefve review of the caf\xe9"
    out = run(b"\n".join(raw), "reviews.txt")
    assert len(out) == 30 and reasons(out) == Counter(bad_record=1)
    assert out[4].id == doc_id(CORPUS, "reviews.txt", 4) and "not UTF-8" in out[4].detail
    blocks = b"\n".join(raw[:3]) + b"\n\n" + b"\n".join(raw[3:6]) + b"\n\n" + b"\n".join(raw[6:])
    out = run(blocks, "reviews.txt", CorpusOptions(text_mode="blank"))
    assert len(out) == 3 and reasons(out) == Counter(bad_record=1)


def test_too_large_records_and_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    sentences = sst2()[:200]
    longest = max(range(200), key=lambda i: len(sentences[i]))
    opts = CorpusOptions(max_record_bytes=len(sentences[longest].encode()) - 1)
    data = ("\n".join(sentences) + "\n").encode()
    expected = run(data, "s.txt", opts)
    assert reasons(expected) == Counter(too_large=1) and len(expected) == 200
    assert expected[longest].id == doc_id(CORPUS, "s.txt", longest)
    assert [d.text for d in docs(expected)] == [
        " ".join(s.split()) for i, s in enumerate(sentences) if i != longest
    ]
    monkeypatch.setattr(corpus_lines, "READ_CHUNK", 7)  # lines cut across many reads
    assert run(data, "s.txt", opts) == expected
    gz = run(gzip.compress(data, mtime=0), "s.txt.gz", opts)
    assert [label(r) for r in gz] == [label(r) for r in expected]
    big = jsonl([{"text": s} for s in sentences])
    limit = max(len(line) for line in big.split(b"\n")) - 1
    out = run(big, "s.jsonl", CorpusOptions(max_record_bytes=limit))
    assert reasons(out) == Counter(too_large=1) and out[longest].reason == "too_large"


def test_headings_kept_by_default() -> None:
    record = {"text": "Chapter 1\nunflinchingly bleak and desperate\nIt is a charming journey ."}
    single = {"text": "unflinchingly bleak and desperate"}
    out = run(jsonl([record, single]), "h.jsonl")
    assert out[0].text == record["text"] and out[1].text == single["text"]
    out = run(jsonl([record, single]), "h.jsonl", CorpusOptions(drop_headings=True))
    assert out[0].text == "It is a charming journey ."  # short unpunctuated lines dropped
    assert out[1].text == single["text"]  # a one-line record is never a heading


def test_bad_names_and_options_are_user_errors() -> None:
    # (a name without extension is sniffed as WikiExtractor output: test_wikiextractor.py)
    for name in ("corpus.csv", "x.parquet.gz", "x.parquet.bz2", "notes.md", "a/.bz2"):
        with pytest.raises(UserError, match="unknown format"):
            run(b"", name)
    with pytest.raises(UserError, match="text mode"):
        CorpusOptions(text_mode="paragraph")
    assert corpora.corpus_format("a/B.JSONL.ZST") == ("jsonl", ".zst")
    assert run(b"", "empty.jsonl") == [] and run(b"\n\n", "empty.txt") == []
