"""pipeline.extract.wiki.xml_reader on every real dump sample, re-encodings, broken streams.

Expected counts come from ../shared/corpora/SOURCES.md (measured there with ElementTree), and
page contents are cross-checked against xml.etree.ElementTree on the same bytes. Every sample is
bundled, byte-identical: corpus/wikipedia/, and corpus/testdata/wikipedia/ for wp2txt.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import random
import re
import tracemalloc
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from pipeline.extract.wiki.xml_reader import (
    EMPTY,
    PARSE_ERROR,
    READ_ERROR,
    TRUNCATED,
    Page,
    WikiXmlReader,
    dump_date_from_name,
    open_local,
    parse_timestamp,
)
from tests.conftest import CORPUS, TESTDATA

GENSIM = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
WP2TXT = "wp2txt_testdata_en.xml.bz2"
VIWIKI = "wikiextractor-pr322_viwiki-test-truncated.xml"
FOWIKI = "mediawiki-dump_fowiki-dump.xml.bz2"
TINY = "dumpster-dive_tinywiki-latest-pages-articles.xml"

# SOURCES.md section 1: pages, {ns: pages}, redirects, text bytes, complete, last revision month.
SOURCES = {
    GENSIM: (206, {0: 205, 4: 1}, 100, 5_752_489, True, "2016-05"),
    WP2TXT: (251, {0: 250, 4: 1}, 112, 10_043_973, False, "2022-07"),
    "enwiki-table-markup.xml.bz2": (5, {0: 5}, 0, 236_151, True, "2017-12"),
    TINY: (8, {0: 8}, 0, 20_871, True, "2013-03"),
    VIWIKI: (10, {0: 9, 4: 1}, 3, 319_412, False, "2023-08"),
    "wiki2txt_enwiki-52-pages.xml": (52, {0: 52}, 50, 184_721, True, "2023-10"),
    FOWIKI: (2, {0: 1, 8: 1}, 0, 3_078, True, "2016-11"),
}


def sample(name: str) -> Path:
    """The repo's copy of ../shared/corpora/wikipedia/NAME."""
    path = CORPUS / "wikipedia" / name
    return path if path.exists() else TESTDATA / "wikipedia" / name


SAMPLE_PATHS = [sample(n) for n in sorted(SOURCES)]


def sample_id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.name}"


def xml_bytes(name: str) -> bytes:
    """Decompressed XML of a sample."""
    with open_local(str(sample(name))) as fh:
        return fh.read()


_READ: dict[tuple[str, str], tuple[list[Page], WikiXmlReader]] = {}


def read_file(path: Path) -> tuple[list[Page], WikiXmlReader]:
    """Pages and reader of a sample, parsed once per session per distinct content."""
    key = (path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    if key not in _READ:
        with open_local(str(path)) as fh:
            reader = WikiXmlReader(fh)
            _READ[key] = (list(reader), reader)
    return _READ[key]


def read_bytes(data: bytes, **kwargs) -> tuple[list[Page], WikiXmlReader]:
    reader = WikiXmlReader(io.BytesIO(data), **kwargs)
    return list(reader), reader


def make_dump(pages: list[dict], namespaces: dict[int, str] | None = None) -> bytes:
    """A small export-0.10 dump. Each page dict: title, text, and optional ns, id, timestamp,
    redirect (target title)."""
    head = '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">\n'
    if namespaces is not None:
        ns = "".join(f'<namespace key="{k}">{escape(v)}</namespace>' for k, v in namespaces.items())
        head += f"<siteinfo><dbname>testwiki</dbname><namespaces>{ns}</namespaces></siteinfo>\n"
    body = []
    for i, p in enumerate(pages, start=1):
        redirect = f'<redirect title="{escape(p["redirect"])}" />' if "redirect" in p else ""
        body.append(
            f"<page><title>{escape(p['title'])}</title><ns>{p.get('ns', 0)}</ns>"
            f"<id>{p.get('id', i)}</id>{redirect}<revision><id>{1000 + i}</id>"
            f"<timestamp>{p.get('timestamp', '2020-01-01T00:00:00Z')}</timestamp>"
            f'<text xml:space="preserve">{escape(p["text"])}</text></revision></page>\n'
        )
    return (head + "".join(body) + "</mediawiki>\n").encode("utf-8")


def etree_pages(data: bytes) -> list[tuple[int, str, str]]:
    """(page id, title, text) of every complete page, by ElementTree, independent of us."""
    out = []
    try:
        for _, elem in ET.iterparse(io.BytesIO(data)):
            if elem.tag.rpartition("}")[2] != "page":
                continue
            fields = {c.tag.rpartition("}")[2]: c for c in elem}
            rev = {c.tag.rpartition("}")[2]: c for c in fields["revision"]}
            out.append((int(fields["id"].text), fields["title"].text, rev["text"].text or ""))
            elem.clear()
    except ET.ParseError:
        pass  # truncated samples: the pages before the cut are what counts
    return out


@pytest.mark.parametrize("path", SAMPLE_PATHS, ids=sample_id)
def test_counts_match_sources(path):
    pages, reader = read_file(path)
    n, namespaces, redirects, text_bytes, complete, month = SOURCES[path.name]
    assert len(pages) == reader.pages == n
    assert dict(Counter(p.ns for p in pages)) == namespaces
    assert sum(p.redirect for p in pages) == redirects
    assert sum(p.text_bytes for p in pages) == text_bytes
    assert sum(len(p.text.encode()) for p in pages) == text_bytes  # nothing capped
    assert reader.max_timestamp.startswith(month)
    if complete:
        assert reader.cut is None
    else:  # both incomplete samples were cut right after a </page>
        assert reader.cut.reason == TRUNCATED
        assert reader.cut.pages_before == n and reader.cut.partial_title == ""


@pytest.mark.parametrize("name", sorted(set(SOURCES) - {WP2TXT}))
def test_pages_equal_elementtree(name):
    pages, _ = read_file(sample(name))
    assert [(p.page_id, p.title, p.text) for p in pages] == etree_pages(xml_bytes(name))


def test_siteinfo():
    _, gensim = read_file(sample(GENSIM))
    site = gensim.siteinfo
    assert (site.dbname, site.namespaces[10], site.namespaces[4]) == (
        "enwiki",
        "Template",
        "Wikipedia",
    )
    assert site.base.startswith("https://en.wikipedia.org/") and site.generator.startswith(
        "MediaWiki"
    )
    _, vi = read_file(sample(VIWIKI))
    assert vi.siteinfo.namespaces[10] == "Bản mẫu" and vi.siteinfo.namespaces[0] == ""
    _, table = read_file(sample("enwiki-table-markup.xml.bz2"))
    assert table.siteinfo is None and table.pages == 5  # no <siteinfo> at all


def test_page_fields():
    pages, _ = read_file(sample(GENSIM))
    first = pages[0]  # AccessibleComputing: the first page of every enwiki dump, a redirect
    assert (first.title, first.page_id, first.ns, first.redirect) == (
        "AccessibleComputing",
        10,
        0,
        True,
    )
    assert first.redirect_target == "Computer accessibility"
    assert parse_timestamp(first.timestamp) is not None and first.revision_id > 0


@pytest.mark.parametrize(
    "old, new",
    [
        ("export-0.10", "export-0.11"),
        ("export-0.10", "export-0.9"),
        (' xmlns="http://www.mediawiki.org/xml/export-0.10/"', ""),  # no namespace at all
    ],
)
def test_export_versions(old, new):
    data = xml_bytes(VIWIKI)
    expected, _ = read_bytes(data)
    changed = data.replace(old.encode(), new.encode()).replace(b'version="0.10"', b'version="0.11"')
    assert changed != data
    pages, reader = read_bytes(changed)
    assert pages == expected and reader.siteinfo.dbname == "viwiki"


def test_prefixed_element_names():
    data = xml_bytes(FOWIKI).decode()
    # Every element written as mw:name with the export namespace bound to the prefix mw.
    prefixed = re.sub(r"<(/?)([A-Za-z]+)([\s/>])", r"<\1mw:\2\3", data)
    prefixed = prefixed.replace('xmlns="http', 'xmlns:mw="http')
    assert read_bytes(prefixed.encode())[0] == read_bytes(data.encode())[0]


def test_export_011_slots_and_history():
    # 0.11: a non-main slot lives in <content>; a history dump has several revisions.
    data = b"""<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11">
    <page><title>A</title><ns>0</ns><id>5</id>
      <revision><id>1</id><timestamp>2001-01-01T00:00:00Z</timestamp><text>old</text></revision>
      <revision><id>2</id><timestamp>2002-02-02T00:00:00Z</timestamp>
        <contributor><username>U</username><id>99</id></contributor>
        <text bytes="3">new</text>
        <content><role>mediainfo</role><text>slot data</text></content>
      </revision></page></mediawiki>"""
    pages, reader = read_bytes(data)
    assert [(p.page_id, p.revision_id, p.timestamp, p.text) for p in pages] == [
        (5, 2, "2002-02-02T00:00:00Z", "new")
    ]
    assert reader.cut is None and reader.max_timestamp == "2002-02-02T00:00:00Z"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_dump(codec):
    text = xml_bytes(VIWIKI).decode("utf-8")
    expected, _ = read_bytes(text.encode("utf-8"))
    declared = '<?xml version="1.0" encoding="UTF-16"?>\n' + text
    bom = "\ufeff" if codec != "utf-16" else ""  # the plain codec writes its own BOM
    pages, reader = read_bytes((bom + declared).encode(codec))
    assert pages == expected and len(pages) == 10
    assert reader.siteinfo.namespaces[10] == "Bản mẫu"
    assert reader.cut.reason == TRUNCATED  # the sample itself is cut: same report as UTF-8


def test_latin1_declared_encoding():
    text = xml_bytes(FOWIKI).decode("utf-8")
    assert any(ord(c) > 127 for c in text)  # Faroese: real non-ASCII letters to get right
    declared = '<?xml version="1.0" encoding="ISO-8859-1"?>\n' + text
    data = declared.encode("latin-1", errors="xmlcharrefreplace")
    assert read_bytes(data)[0] == read_bytes(text.encode())[0]


def test_text_cap_flags_and_counts_bytes():
    full, _ = read_file(sample(VIWIKI))
    cap = 40_000  # Vietnamese: most letters are 2-3 UTF-8 bytes, so bytes != characters
    capped, _ = read_bytes(xml_bytes(VIWIKI), max_text_bytes=cap)
    for big, small in zip(full, capped):
        size = len(big.text.encode())
        assert small.text_bytes == size
        assert small.too_large == (size > cap)
        assert small.text == ("" if size > cap else big.text)
    assert 0 < sum(p.too_large for p in capped) < len(capped)
    assert any(len(p.text) <= cap < p.text_bytes for p in full)  # chars alone would not do


class _HugePageStream(io.RawIOBase):
    """A dump whose second page holds ``size`` bytes of wikitext, generated on the fly."""

    UNIT = "word é ".encode()  # 8 UTF-8 bytes, 7 characters

    def __init__(self, size: int):
        head = make_dump([{"title": "Small", "text": "tiny"}]).rsplit(b"</mediawiki>", 1)[0]
        self.parts = [
            head + b"<page><title>Huge</title><ns>0</ns><id>7</id><revision>"
            b"<timestamp>2020-01-01T00:00:00Z</timestamp><text>"
        ]
        self.left = size // len(self.UNIT)
        self.tail = make_dump([{"title": "After", "text": "still read", "id": 8}]).split(b"\n", 1)[
            1
        ]
        self.tail = b"</text></revision></page>\n" + self.tail

    def readable(self):
        return True

    def readinto(self, buf):
        if not self.parts:
            if self.left:
                n = min(self.left, (1 << 20) // len(self.UNIT))
                self.left -= n
                self.parts.append(self.UNIT * n)
            elif self.tail:
                self.parts.append(self.tail)
                self.tail = b""
            else:
                return 0
        data = self.parts.pop(0)
        n = min(len(buf), len(data))
        buf[:n] = data[:n]
        if n < len(data):
            self.parts.insert(0, data[n:])
        return n


def test_50mb_page_is_flagged_with_bounded_memory():
    size = 50_000_000
    tracemalloc.start()
    try:
        reader = WikiXmlReader(io.BufferedReader(_HugePageStream(size)))
        pages = [(p.title, p.too_large, p.text_bytes, len(p.text)) for p in reader]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pages == [("Small", False, 4, 4), ("Huge", True, size, 0), ("After", False, 10, 10)]
    assert reader.cut is None
    assert peak < 16_000_000  # 1 MiB chunks + the 4 MB cap, never the 50 MB page


def test_empty_file():
    pages, reader = read_bytes(b"")
    assert pages == [] and reader.cut.reason == EMPTY and reader.cut.pages_before == 0


def test_truncated_bz2_keeps_complete_pages():
    compressed = sample(GENSIM).read_bytes()
    full, _ = read_file(sample(GENSIM))
    reader = WikiXmlReader(bz2.open(io.BytesIO(compressed[: len(compressed) // 2])))
    pages = list(reader)
    assert 0 < len(pages) < len(full)
    assert pages == full[: len(pages)]
    assert reader.cut.reason == READ_ERROR and "EOFError" in reader.cut.detail
    assert reader.cut.pages_before == len(pages)


def _page_starts(data: bytes) -> list[int]:
    return [m.start() for m in re.finditer(rb"<page>", data)]


def test_cut_mid_page():
    data = xml_bytes(VIWIKI)
    full, _ = read_bytes(data)
    start = _page_starts(data)[4]
    middle = data.index(b"<text", start) + 500
    pages, reader = read_bytes(data[:middle])
    assert pages == full[:4]
    cut = reader.cut
    assert cut.reason == TRUNCATED and cut.pages_before == 4
    assert (cut.partial_title, cut.partial_page_id) == (full[4].title, full[4].page_id)


def test_garbage_mid_page_is_reported_not_raised():
    data = xml_bytes(VIWIKI)
    full, _ = read_bytes(data)
    middle = data.index(b"<text", _page_starts(data)[4]) + 500
    broken = data[:middle] + b"<<<&&& \x00\xff garbage" + data[middle:]
    pages, reader = read_bytes(broken)
    assert pages == full[:4]
    assert reader.cut.reason == PARSE_ERROR and reader.cut.partial_title == full[4].title
    assert reader.cut.line > 1 and reader.cut.offset > 0


def test_binary_garbage_file():
    pages, reader = read_bytes(random.Random(0).randbytes(50_000))
    assert pages == [] and reader.cut.reason == PARSE_ERROR and reader.root == ""


def test_dump_dates():
    name = "dumps/enwiki-20230801-pages-articles1.xml-p1p41242.bz2"
    assert dump_date_from_name(name) == datetime(2023, 8, 1, tzinfo=timezone.utc)
    assert dump_date_from_name(GENSIM) is None  # "latest": no date in the name
    assert parse_timestamp("2016-05-01T07:08:29Z") == datetime(
        2016, 5, 1, 7, 8, 29, tzinfo=timezone.utc
    )
    assert parse_timestamp("garbage") is None
