"""Multistream dumps: recompress a real sample, then show that reading it split by its index
gives exactly what reading the original in one piece gives.

The oracle everywhere is xml.etree.ElementTree.iterparse over the original file (via bz2.open),
which shares no code with pipeline.extract.wiki.multistream or .bz2streams.
"""

from __future__ import annotations

import bz2
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bertprep.cli import main
from ground.errors import UserError
from pipeline.extract.wiki import bz2streams as bs
from pipeline.extract.wiki import multistream as ms
from pipeline.extract.wiki import recompress as rc

GENSIM = "wikipedia/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
WP2TXT = "testdata/wikipedia/wp2txt_testdata_en.xml.bz2"  # cut after a </page>, no </mediawiki>
PER_STREAM = 10


def parse_pages(fileobj) -> tuple[list[tuple[str, str, str]], bool]:
    """(page id, title, text) of every page, and whether the document parsed to its end."""
    pages = []
    try:
        for _, el in ET.iterparse(fileobj):
            if el.tag.rsplit("}", 1)[-1] == "page":
                text = el.find("{*}revision/{*}text")
                pages.append((el.find("{*}id").text, el.find("{*}title").text, text.text or ""))
                el.clear()
    except ET.ParseError:
        return pages, False
    return pages, True


def siteinfo_of(fileobj) -> bytes:
    """The serialised <siteinfo> element (namespaces etc.), which wikitext cleaning needs."""
    for _, el in ET.iterparse(fileobj):
        if el.tag.endswith("}siteinfo"):
            return ET.tostring(el)
    raise AssertionError("no <siteinfo>")


def recompress_file(src: Path, out: Path, per_stream: int = PER_STREAM) -> rc.RecompressStats:
    index = Path(ms.index_path_for(str(out)))
    with src.open("rb") as f, out.open("wb") as dst, index.open("wb") as idx:
        return rc.recompress(f, dst, idx, pages_per_stream=per_stream)


def split_read(
    path: Path, index: Path | None, target_bytes: int
) -> tuple[list, list[tuple[int, int]]]:
    """Pages read range by range, each from its own file object as workers would, in order.
    Without an index the streams are found by scanning the file."""
    where = None if index is None else str(index)
    plan = ms.plan_dump(open_rb, str(path), where, path.stat().st_size, target_bytes)
    pages: list = []
    for start, end in plan.ranges:
        with path.open("rb") as f:
            got, complete = parse_pages(bs.open_range(f, start, end, plan.header))
        assert complete, f"range [{start}, {end}) is not a complete XML document"
        pages += got
    return pages, plan.ranges


def open_rb(path: str):
    return open(path, "rb")


def unbz2(path: Path) -> io.BytesIO:
    """The decompressed file (every stream, as bz2.open reads it) as a binary file object."""
    with bz2.open(path) as f:
        return io.BytesIO(f.read())


@pytest.fixture(scope="module")
def original(corpus_dir):
    src = corpus_dir / GENSIM
    pages, complete = parse_pages(unbz2(src))
    assert complete and len(pages) == 206  # SOURCES.md
    return src, pages


@pytest.fixture(scope="module")
def multi(original, tmp_path_factory):
    out = tmp_path_factory.mktemp("ms") / "enwiki-sample-multistream.xml.bz2"
    stats = recompress_file(original[0], out)
    return out, Path(ms.index_path_for(str(out))), stats


def test_index_lists_every_page_with_its_stream(original, multi):
    _, pages = original
    out, index, stats = multi
    with index.open("rb") as f:
        entries = list(ms.iter_index(f))
    assert [(pid, title) for _, pid, title in entries] == [(p[0], p[1]) for p in pages]
    assert any(":" in title for _, _, title in entries)  # "Wikipedia:..." survives the split
    offsets = [off for off, _, _ in entries]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == stats.streams == -(-206 // PER_STREAM)
    assert max(offsets.count(o) for o in set(offsets)) == PER_STREAM
    data = out.read_bytes()
    for offset in sorted(set(offsets)):  # the one stream at OFFSET holds exactly its pages
        dec = bz2.BZ2Decompressor()
        stream_pages, _ = parse_pages(io.BytesIO(b"<r>" + dec.decompress(data[offset:]) + b"</r>"))
        assert dec.eof
        assert [p[0] for p in stream_pages] == [pid for off, pid, _ in entries if off == offset]
    assert (stats.pages, stats.complete, stats.dropped_bytes, stats.missing_ids) == (
        206,
        True,
        0,
        0,
    )


def test_recompressed_file_is_the_same_xml(original, multi):
    src, pages = original
    out, _, stats = multi
    assert unbz2(out).getvalue() == unbz2(src).getvalue()
    assert parse_pages(unbz2(out)) == (pages, True)
    assert stats.bytes_out == out.stat().st_size
    with out.open("rb") as f:
        assert bs.is_multistream(f)
    with src.open("rb") as f:
        assert not bs.is_multistream(f)


@pytest.mark.parametrize("target_bytes", [1, 30_000, 250_000, 10**9])
def test_split_read_equals_unsplit_read(original, multi, target_bytes):
    out, index, stats = multi
    pages, ranges = split_read(out, index, target_bytes)
    assert pages == original[1]
    siteinfo = siteinfo_of(unbz2(original[0]))
    plan = ms.plan_dump(open_rb, str(out), str(index), out.stat().st_size, target_bytes)
    for start, end in ranges:  # every range carries the dump's namespaces
        with out.open("rb") as f:
            assert siteinfo_of(bs.open_range(f, start, end, plan.header)) == siteinfo
    assert ranges[-1][1] == out.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    if target_bytes == 1:
        assert len(ranges) == stats.streams  # one range per stream
    if target_bytes == 10**9:
        assert len(ranges) == 1


def test_split_without_index_scans_for_streams(original, multi):
    out, index, stats = multi
    with index.open("rb") as f:
        offsets = ms.read_index(f)
    with out.open("rb") as f:
        found = bs.scan_stream_offsets(f, chunk=4099)  # matches straddle chunk ends
    data = out.read_bytes()
    dec = bz2.BZ2Decompressor()
    dec.decompress(data[offsets[-1] :])  # the last page stream; the footer stream follows
    assert found == [0, *offsets, len(data) - len(dec.unused_data)]
    for target in (1, 100_000):
        assert split_read(out, None, target)[0] == original[1]
    size = original[0].stat().st_size  # a single-stream dump is one range, read whole
    assert ms.plan_dump(open_rb, str(original[0]), None, size).ranges == [(0, size)]


def test_recompress_is_deterministic_and_idempotent(original, multi):
    """Recompressing the multistream output itself (a many-stream source), with 3 threads
    instead of 1, gives the same bytes."""
    out, index, _ = multi
    dst, idx = io.BytesIO(), io.BytesIO()
    with out.open("rb") as f:
        rc.recompress(f, dst, idx, pages_per_stream=PER_STREAM, workers=3)
    assert dst.getvalue() == out.read_bytes()
    assert idx.getvalue() == index.read_bytes()


def test_header_and_pages_in_one_first_stream(original, multi, tmp_path):
    """A layout where stream 0 holds the header and the first pages (index offset 0)."""
    out, index, _ = multi
    data = out.read_bytes()
    with index.open("rb") as f:
        entries = list(ms.iter_index(f))
    first, second = sorted({e[0] for e in entries})[:2]
    merged = bz2.compress(bz2.decompress(data[:second]))  # header stream + first page stream
    shift = len(merged) - second
    path, idx_path = tmp_path / "merged.xml.bz2", tmp_path / "merged-index.txt"
    path.write_bytes(merged + data[second:])
    lines = [f"{0 if o == first else o + shift}:{p}:{t}\n" for o, p, t in entries]
    idx_path.write_text("".join(lines), encoding="utf-8")  # a plain-text index
    for target in (1, 10**9):
        assert split_read(path, idx_path, target)[0] == original[1]
    assert split_read(path, None, 1)[0] == original[1]  # no index: stream 0 has pages
    # The same file with the header stream claimed to be pageless loses pages: refused.
    with path.open("rb") as f, pytest.raises(UserError, match="index does not list"):
        bs.read_header(f, second + shift)


def test_cut_dump_keeps_complete_pages_and_says_so(corpus_dir, tmp_path, capsys):
    src = corpus_dir / WP2TXT
    xml = bz2.decompress(src.read_bytes())
    pages, complete = parse_pages(io.BytesIO(xml))
    assert not complete and len(pages) == 251  # SOURCES.md: cut after a </page>
    out = tmp_path / "wp-multistream.xml.bz2"
    assert main(["recompress", str(src), "--output", str(out), "--pages-per-stream", "50"]) == 0
    err = capsys.readouterr().err
    assert "is cut" in err and "kept all 251 complete pages" in err
    # Every byte of the source is kept, and the document is closed.
    assert bz2.decompress(out.read_bytes()) == xml + b"</mediawiki>\n"
    with (tmp_path / "wp-multistream-index.txt.bz2").open("rb") as f:
        assert [e[1] for e in ms.iter_index(f)] == [p[0] for p in pages]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_dump_cut_inside_a_bz2_stream(original, tmp_path):
    src = tmp_path / "cut.xml.bz2"
    src.write_bytes(original[0].read_bytes()[:700_000])
    dec = bz2.BZ2Decompressor()
    partial = dec.decompress(src.read_bytes())
    assert not dec.eof
    pages, complete = parse_pages(io.BytesIO(partial))
    assert not complete and 0 < len(pages) < 206
    stats = recompress_file(src, tmp_path / "cut-multistream.xml.bz2")
    assert not stats.complete and "inside a bz2 stream" in stats.cut
    assert stats.pages == len(pages) and stats.dropped_bytes > 0  # a half page left out
    assert parse_pages(unbz2(tmp_path / "cut-multistream.xml.bz2")) == (pages, True)
    assert pages == original[1][: len(pages)]


def test_bad_inputs_are_user_errors(corpus_dir, tmp_path):
    cases = {
        "empty.xml.bz2": b"",
        "plain.xml.bz2": (corpus_dir / "wikipedia/wiki2txt_enwiki-52-pages.xml").read_bytes(),
        "book.txt.bz2": bz2.compress((corpus_dir / "books/1952-0.txt").read_bytes()),
        "garbage.bz2": b"BZh9" + bytes(range(256)) * 4,
    }
    messages = {}
    for name, data in cases.items():
        with pytest.raises(UserError) as exc:
            rc.recompress(io.BytesIO(data), io.BytesIO(), io.BytesIO())
        messages[name] = str(exc.value)
    assert "empty" in messages["empty.xml.bz2"]
    assert "not bzip2" in messages["plain.xml.bz2"]
    assert "MediaWiki" in messages["book.txt.bz2"]
    assert "not valid bzip2" in messages["garbage.bz2"]
    plain = corpus_dir / "wikipedia/wiki2txt_enwiki-52-pages.xml"  # split-read side
    with pytest.raises(UserError, match="does not start with a bzip2 stream"):
        ms.plan_dump(open_rb, str(plain), None, plain.stat().st_size)
    with pytest.raises(UserError, match="not complete bzip2 data"):
        bs.read_header(io.BytesIO(b"BZh9" + bytes(range(256))), 0)
    with pytest.raises(UserError, match="pages per stream"):
        rc.recompress(io.BytesIO(b"BZh"), io.BytesIO(), io.BytesIO(), pages_per_stream=0)


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    empty = tmp_path / "e.xml.bz2"
    empty.write_bytes(b"")
    out = str(tmp_path / "o.xml.bz2")
    assert main(["recompress", str(tmp_path / "missing.xml.bz2"), "--output", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["recompress", str(empty), "--output", out]) == 2
    assert "input is empty" in capsys.readouterr().err
    assert main(["recompress", str(empty), "--output", str(empty)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.xml.bz2"]  # no temp files left


def test_index_that_does_not_match_the_file(multi):
    out, index, _ = multi
    with index.open("rb") as f:
        offsets = ms.read_index(f)
    with out.open("rb") as f:
        header = bs.read_header(f, offsets[0])
        with pytest.raises(UserError, match="index does not match"):
            bs.open_range(f, offsets[1] + 1, offsets[2], header).read()
    with pytest.raises(UserError, match="OFFSET:PAGEID:TITLE"):
        ms.read_index(io.BytesIO(b"12:34:Title\nnot an index line\n"))
    with pytest.raises(UserError, match="no pages"):
        ms.read_index(io.BytesIO(bz2.compress(b"")))
    with pytest.raises(UserError, match="beyond the file size"):
        ms.plan_ranges([10, 500], 400, 100)


def test_titles_are_unescaped_like_an_xml_parser():
    raw = "AT&amp;T &quot;Q&quot; &lt;x&gt; it&apos;s &#039; &#x41;&#66; &amp;amp;"
    assert rc.unescape_xml(raw) == ET.fromstring(f"<t>{raw}</t>").text


def test_index_names_follow_wikipedia(tmp_path):
    assert (
        ms.index_path_for("gs://b/enwiki-20240601-pages-articles-multistream.xml.bz2")
        == "gs://b/enwiki-20240601-pages-articles-multistream-index.txt.bz2"
    )
    assert (
        ms.index_path_for("/d/enwiki-20240601-pages-articles-multistream3.xml-p1p41242.bz2")
        == "/d/enwiki-20240601-pages-articles-multistream-index3.txt-p1p41242.bz2"
    )
    assert ms.index_path_for("x/dump.xml.bz2") == "x/dump-index.txt.bz2"
    dump = tmp_path / "a-multistream.xml.bz2"
    assert ms.find_index(str(dump)) is None
    (tmp_path / "a-multistream-index.txt.bz2").write_bytes(b"")
    assert ms.find_index(str(dump)) == str(tmp_path / "a-multistream-index.txt.bz2")
    with pytest.raises(UserError, match="does not exist"):
        ms.find_index(str(dump), explicit=str(tmp_path / "nope.txt.bz2"))


@given(
    st.lists(st.integers(1, 5000), min_size=1, max_size=40),
    st.integers(1, 20_000),
)
def test_plan_ranges_cover_the_file_in_order(sizes, target):
    offsets = [600]
    for size in sizes[:-1]:
        offsets.append(offsets[-1] + size)
    file_size = offsets[-1] + sizes[-1]
    ranges = ms.plan_ranges(offsets, file_size, target)
    assert ranges == ms.plan_ranges(offsets, file_size, target)
    assert ranges[0][0] == 600 and ranges[-1][1] == file_size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(start in offsets for start, _ in ranges)  # ranges start at stream starts
    assert all(end - start >= target for start, end in ranges[:-1])


@pytest.mark.parametrize(
    "name",
    [
        "enwiki-table-markup.xml.bz2",  # no <siteinfo>
        "mediawiki-dump_fowiki-dump.xml.bz2",
        "dumpster-dive_tinywiki-latest-pages-articles.xml",
        "wiki2txt_enwiki-52-pages.xml",
        "wikiextractor-pr322_viwiki-test-truncated.xml",  # cut, no </mediawiki>
    ],
)
def test_every_small_sample_splits_to_the_same_pages(corpus_dir, tmp_path, name):
    data = (corpus_dir / "wikipedia" / name).read_bytes()
    xml = bz2.decompress(data) if name.endswith(".bz2") else data
    pages, complete = parse_pages(io.BytesIO(xml))
    assert pages
    src = tmp_path / "src.xml.bz2"
    src.write_bytes(bz2.compress(xml))
    out = tmp_path / "sample-multistream.xml.bz2"
    stats = recompress_file(src, out, per_stream=3)
    assert (stats.pages, stats.complete) == (len(pages), complete)
    footer = b"" if complete else b"</mediawiki>\n"
    assert bz2.decompress(out.read_bytes()) == xml + footer
    index = tmp_path / "sample-multistream-index.txt.bz2"
    for target in (1, 10**9):
        assert split_read(out, index, target)[0] == pages


@pytest.mark.parametrize("chunk", [7, 1000])
def test_tiny_chunks_give_the_same_bytes(corpus_dir, tmp_path, monkeypatch, chunk):
    """Tags split across read and decompress chunks: output and split reads do not change."""
    xml = (corpus_dir / "wikipedia/wiki2txt_enwiki-52-pages.xml").read_bytes()
    pages, _ = parse_pages(io.BytesIO(xml))
    src = tmp_path / "src.xml.bz2"
    src.write_bytes(bz2.compress(xml))
    normal = tmp_path / "normal-multistream.xml.bz2"
    recompress_file(src, normal, per_stream=5)
    monkeypatch.setattr(bs, "READ_CHUNK", chunk)
    monkeypatch.setattr(bs, "OUT_CHUNK", chunk + 3)
    monkeypatch.setattr(ms, "INDEX_CHUNK", chunk)
    tiny = tmp_path / "tiny-multistream.xml.bz2"
    recompress_file(src, tiny, per_stream=5)
    assert tiny.read_bytes() == normal.read_bytes()
    index = tmp_path / "tiny-multistream-index.txt.bz2"
    assert index.read_bytes() == (tmp_path / "normal-multistream-index.txt.bz2").read_bytes()
    plain = bz2.decompress(index.read_bytes())  # read in 7-byte chunks, lines cut anywhere
    assert ms.read_index(io.BytesIO(plain)) == sorted(
        {int(x.split(b":")[0]) for x in plain.splitlines()}
    )
    for target in (1, 10_000):
        assert split_read(tiny, index, target)[0] == pages


def test_recompress_and_split_through_a_beam_filesystem(corpus_dir):
    """memfs:// stands in for gs://: the CLI and the split read use only Beam's FileSystems."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    from tests.pipeline.memfs import MemFileSystem

    xml = (corpus_dir / "wikipedia/wiki2txt_enwiki-52-pages.xml").read_bytes()
    pages, _ = parse_pages(io.BytesIO(xml))
    MemFileSystem.FILES["memfs://in/wiki.xml.bz2"] = bz2.compress(xml)
    out = "memfs://out/wiki-multistream.xml.bz2"
    args = ["recompress", "memfs://in/wiki.xml.bz2", "--output", out, "--pages-per-stream", "7"]
    assert main(args) == 0
    index = "memfs://out/wiki-multistream-index.txt.bz2"
    assert sorted(p for p in MemFileSystem.FILES if p.startswith("memfs://out/")) == [index, out]
    assert ms.find_index(out, exists=FileSystems.exists) == index

    def opener(path: str):
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)

    size = FileSystems.match([out])[0].metadata_list[0].size_in_bytes
    plan = ms.plan_dump(opener, out, index, size, target_bytes=1)
    got: list = []
    for start, end in plan.ranges:
        with opener(out) as f:
            got += parse_pages(bs.open_range(f, start, end, plan.header))[0]
    assert got == pages and len(plan.ranges) == -(-len(pages) // 7)


TINY = "wikipedia/dumpster-dive_tinywiki-latest-pages-articles.xml"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(0.0, 1.0), layout=st.sampled_from(["as is", "crlf", "one line"]))
def test_any_cut_keeps_exactly_the_complete_pages(corpus_dir, cut, layout):
    """Cut a real dump anywhere, in any line layout: the pages kept are exactly those an XML
    parser reads before the cut."""
    xml = (corpus_dir / TINY).read_bytes()
    if layout == "crlf":
        xml = xml.replace(b"\n", b"\r\n")
    elif layout == "one line":
        xml = re.sub(rb">\s+<(/?)(page|mediawiki)", rb"><\1\2", xml)
    whole, complete = parse_pages(io.BytesIO(xml))
    assert complete and len(whole) == 8  # SOURCES.md
    text = xml[: round(cut * len(xml))]
    pages, _ = parse_pages(io.BytesIO(text))
    dst, idx = io.BytesIO(), io.BytesIO()
    try:
        stats = rc.recompress(io.BytesIO(bz2.compress(text)), dst, idx, pages_per_stream=3)
    except UserError as exc:  # cut before the first page: nothing to convert, and it says so
        assert not pages and re.search("first <page>|no <mediawiki>|empty", str(exc))
        return
    assert stats.pages == len(pages) and stats.complete == (text == xml)
    assert parse_pages(io.BytesIO(bz2.decompress(dst.getvalue()))) == (pages, True)
    ids = [e[1] for e in ms.iter_index(io.BytesIO(idx.getvalue()))]
    assert ids == [p[0] for p in pages]


@pytest.mark.parametrize("where", [0.3, 0.5, 0.9])
def test_range_cut_inside_a_stream_keeps_every_complete_page(multi, where):
    """A multistream dump truncated inside a stream, read as one range the way a worker reads
    it: every page decompressed before the cut is kept and the cut is reported. (A buffered
    reader of 1 MiB over the pieces used to drop what its last read had gathered.) Oracle:
    bz2.BZ2Decompressor over the bytes before the cut, stream by stream, parsed by ElementTree."""
    from pipeline.extract.wiki import xml_reader

    out, index, _ = multi
    data = out.read_bytes()
    with index.open("rb") as f:
        offsets = ms.read_index(f)
    with io.BytesIO(data) as f:
        header = bs.read_header(f, offsets[0])
    cut = offsets[0] + round(where * (len(data) - offsets[0]))
    xml, rest = bytearray(header), data[offsets[0] : cut]
    while rest:
        dec = bz2.BZ2Decompressor()
        xml += dec.decompress(rest)
        rest = dec.unused_data
    expected, complete = parse_pages(io.BytesIO(bytes(xml)))
    assert not complete and len(expected) > 10

    reader = xml_reader.WikiXmlReader(
        bs.open_range(io.BytesIO(data[:cut]), offsets[0], len(data), header)
    )
    got = [str(p.page_id) for p in reader]
    assert got == [p[0] for p in expected]
    assert reader.cut is not None and reader.cut.reason == xml_reader.READ_ERROR


def test_corrupt_stream_inside_a_range_is_a_cut_not_a_bad_index(multi):
    """Flipped bytes in a later stream of a range: the pages of the streams before it are
    kept and the cut reported (it used to be "the index does not match the file")."""
    from pipeline.extract.wiki import xml_reader

    out, index, _ = multi
    data = bytearray(out.read_bytes())
    with index.open("rb") as f:
        offsets = ms.read_index(f)
    with io.BytesIO(bytes(data)) as f:
        header = bs.read_header(f, offsets[0])
    bad = len(offsets) // 2
    mid = (offsets[bad] + offsets[bad + 1]) // 2
    data[mid : mid + 64] = bytes(64)
    reader = xml_reader.WikiXmlReader(
        bs.open_range(io.BytesIO(bytes(data)), offsets[0], len(data), header)
    )
    got = [p.page_id for p in reader]
    assert len(got) >= (bad - 1) * PER_STREAM
    assert reader.cut is not None and reader.cut.reason == xml_reader.READ_ERROR
