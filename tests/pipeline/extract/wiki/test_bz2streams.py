"""Whole .bz2 dumps read through bz2streams.open_whole: nothing before a cut is lost."""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path

import pytest

from pipeline.extract.wiki.bz2streams import open_whole
from pipeline.extract.wiki.dump import WikiOptions, extract_wikipedia
from pipeline.extract.wiki.xml_reader import READ_ERROR

DUMP = Path(__file__).resolve().parents[4] / "corpus/testdata/wikipedia/wp2txt_testdata_en.xml.bz2"
CUT = 1_422_053  # the byte the reliability issue cut the dump at


def _prefix_pages(data: bytes) -> int:
    """Complete pages in what Python's own decompressor recovers from ``data`` (independent)."""
    dec, out = bz2.BZ2Decompressor(), bytearray()
    try:
        out += dec.decompress(data)
    except EOFError:  # pragma: no cover - decompress() keeps what it has at a truncation
        pass
    return out.count(b"</page>")


def test_a_cut_dump_keeps_every_complete_page_before_the_cut(tmp_path):
    data = DUMP.read_bytes()[:CUT]
    expected = _prefix_pages(data)
    assert expected > 100
    path = tmp_path / "cut.xml.bz2"
    path.write_bytes(data)
    with open(path, "rb") as raw:
        result = extract_wikipedia(open_whole(raw), "cut.xml.bz2", WikiOptions())
        records = list(result)
    assert len(records) == expected  # one record (kept or dropped) per complete page
    assert result.cut is not None and result.cut.reason == READ_ERROR
    assert "EOFError" in result.cut.detail


def test_the_whole_dump_reads_as_bz2file_does():
    with open(DUMP, "rb") as raw:
        ours = open_whole(raw)
        pieces = []
        while chunk := ours.read(1 << 20):
            pieces.append(chunk)
    assert b"".join(pieces) == bz2.decompress(DUMP.read_bytes())


def test_corrupt_data_raises_after_the_good_bytes():
    good = bz2.compress(b"x" * 5000)
    reader = open_whole(io.BytesIO(good + b"BZh9garbage-not-a-stream"))
    assert reader.read(10_000) == b"x" * 5000
    with pytest.raises(OSError):
        reader.read(10)


@pytest.mark.parametrize(
    "data, cause",
    [
        (gzip.compress(b"<mediawiki></mediawiki>", mtime=0), "gzip data, not bz2"),
        (b"<mediawiki>\n</mediawiki>\n", "uncompressed XML, not bz2"),
        (b"\x00\x01\x02garbage", "not bz2 data"),
    ],
)
def test_a_file_named_bz2_that_is_not_says_what_it_is(tmp_path, data, cause):
    path = tmp_path / "dump.xml.bz2"
    path.write_bytes(data)
    with open(path, "rb") as raw:
        result = extract_wikipedia(open_whole(raw), "dump.xml.bz2", WikiOptions())
        assert list(result) == []
    assert result.cut is not None and cause in result.cut.detail


def test_an_empty_bz2_is_reported_as_empty(tmp_path):
    path = tmp_path / "empty.xml.bz2"
    path.write_bytes(b"")
    with open(path, "rb") as raw:
        result = extract_wikipedia(open_whole(raw), "empty.xml.bz2", WikiOptions())
        assert list(result) == []
    assert result.cut is not None and "empty" in result.cut.detail
