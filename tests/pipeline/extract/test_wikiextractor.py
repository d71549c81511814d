"""WikiExtractor output as a --corpus input, on real slices of ../shared/corpora/wikitext-en
(bundled in corpus/testdata/wikitext-en*: plain, --json and .bz2 forms) and on malformed files
made from them. Every reader test checks that records in == docs + dropped."""

from __future__ import annotations

import bz2
import io
import json
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bertprep.cli import main as bertprep
from pipeline.common import run_report, textnorm
from pipeline.common.records import CORPUS, Document, Dropped, doc_id
from pipeline.extract import corpus_lines
from pipeline.extract import corpus_wikiextractor as wx
from pipeline.extract.corpora import CorpusOptions, corpus_format, iter_corpus
from tests import proc
from tests.conftest import TESTDATA

PLAIN_DIR = TESTDATA / "wikitext-en"
FORMS = {"plain": "", "json": "-json", "bz2": "-bz2"}
# The real headers of two pages of wikitext-en/AA/wiki_01, with the XML escaping of their titles.
AMP_HEADER = (
    '<doc id="56572624" url="?curid=56572624" '
    'title="A.T. Still University\'s Arizona School of Dentistry &amp; Oral Health">'
)
QUOT_HEADER = '<doc id="56576945" url="?curid=56576945" title="Albert &quot;Ginger&quot; Baker">'


def records(data: bytes, relpath: str = "AA/wiki_00", **options) -> list:
    return list(iter_corpus(io.BytesIO(data), relpath, CorpusOptions(**options)))


def form_file(form: str, name: str) -> tuple[bytes, str]:
    """(bytes, relpath) of one bundled file in one form."""
    suffix = ".bz2" if form == "bz2" else ""
    path = TESTDATA / f"wikitext-en{FORMS[form]}" / "AA" / f"{name}{suffix}"
    return path.read_bytes(), f"AA/{name}{suffix}"


def summary(recs: list) -> list[tuple]:
    """What must not depend on the form: title, text or reason, page id."""
    return [
        (r.title, r.text, r.page_id) if isinstance(r, Document) else (r.title, r.reason)
        for r in recs
    ]


def reasons(recs: list) -> Counter:
    return Counter(r.reason for r in recs if isinstance(r, Dropped))


def plain_docs(data: bytes) -> list[tuple[str, str, list[str]]]:
    """(id, title, body lines after the title line) of each <doc>, parsed independently."""
    out = []
    for block in data.decode().split("</doc>\n")[:-1]:
        header, title_line, *body = block.split("\n")
        attrs = wx.parse_header(header)
        assert attrs is not None and title_line == attrs["title"]
        out.append((attrs["id"], attrs["title"], [line for line in body if line.strip()]))
    return out


@pytest.mark.parametrize("name", ["wiki_00", "wiki_01"])
def test_real_slices_all_forms_give_the_same_records(name: str) -> None:
    plain, relpath = form_file("plain", name)
    expected = plain_docs(plain)
    out = {form: records(*form_file(form, name)) for form in FORMS}
    assert summary(out["plain"]) == summary(out["json"]) == summary(out["bz2"])
    assert [r.id for r in out["plain"]] == [r.id for r in out["json"]]  # same relpath, same ids
    recs = out["plain"]
    assert len(recs) == len(expected) == plain.count(b"\n<doc ") + 1  # one record per <doc>
    for rec, (ident, title, body) in zip(recs, expected):
        assert rec.id == doc_id(CORPUS, relpath, ident) and rec.title == title
        if body:  # the title line is gone; the text is WikiExtractor's, unescaped
            assert rec.text == "\n".join(textnorm.normalize(wx.unescape_text(b)) for b in body)
            assert rec.page_id == int(ident) and rec.source == CORPUS and rec.path == relpath
        else:  # WikiExtractor's redirect stubs: nothing but the title line
            assert (rec.reason, rec.kind) == ("empty", "rejected")


def test_headings_kept_and_escapes_undone() -> None:
    docs = {r.title: r for r in records(*form_file("plain", "wiki_01"))}
    clan = docs["SS Clan Alpine (1899)"].text
    assert "William Doxford & Sons of Pallion" in clan and "&amp;" not in clan
    assert clan.split("\n")[1] == "Design and Construction."  # a heading, as given
    shaw = records(*form_file("plain", "wiki_00"))[1]
    assert shaw.title == "Jarred Shaw" and shaw.text.startswith("Jarred Shaw (born September")


def test_titles_unescaped_and_title_line_dropped_only_when_it_is_the_title() -> None:
    body = "Some text of this page, long enough to be a document of its own words."
    for header, title in [
        (AMP_HEADER, "A.T. Still University's Arizona School of Dentistry & Oral Health"),
        (QUOT_HEADER, 'Albert "Ginger" Baker'),
    ]:
        raw_title = header.split('title="', 1)[1][:-2]
        data = f"{header}\n{raw_title}\n\n{body}\n\n</doc>\n".encode()
        (rec,) = records(data)
        assert (rec.title, rec.text) == (title, body)
    other = f'<doc id="1" url="u" title="T">\nNot the title.\n{body}\n</doc>\n'.encode()
    assert records(other)[0].text == f"Not the title.\n{body}"
    # a first paragraph equal to the title survives in both forms: only the header line goes
    twice = f'<doc id="1" url="u" title="T">\nT\n\nT\n{body}\n</doc>\n'.encode()
    as_json = json.dumps({"id": "1", "url": "u", "title": "T", "text": f"T\n{body}"})
    assert records(twice)[0].text == records(as_json.encode() + b"\n")[0].text == f"T\n{body}"


def test_parse_header_and_sniff() -> None:
    assert wx.parse_header(QUOT_HEADER) == {
        "id": "56576945",
        "url": "?curid=56576945",
        "title": "Albert &quot;Ginger&quot; Baker",
    }
    raw_quotes = '<doc id="7" url="u" title="Albert "Ginger" Baker">'  # unescaped, title last
    assert wx.parse_header(raw_quotes)["title"] == 'Albert "Ginger" Baker'
    assert wx.parse_header('<doc id="7" title="x" url="u">') == {
        "id": "7",
        "title": "x",
        "url": "u",
    }
    assert wx.parse_header("<doc>") == {}
    assert wx.parse_header('<doc id="7" url="u"') is None
    assert wx.parse_header("<doc id=7 url=u>") is None  # unquoted: not WikiExtractor's
    plain, _ = form_file("plain", "wiki_00")
    as_json, _ = form_file("json", "wiki_00")
    assert wx.sniff(plain) == wx.sniff(b"\xef\xbb\xbf\n\n" + plain) == wx.PLAIN
    assert wx.sniff(as_json) == wx.JSON and wx.sniff(as_json, json_too=False) is None
    for other in (b'{"text": "a"}\n', b"<document>\n", b"Some text\n", b"", b"[1]\n", b"{x\n"):
        assert wx.sniff(other) is None, other
    assert corpus_format("AA/wiki_00") == ("sniff", "")
    assert corpus_format("AA/wiki_00.bz2") == ("sniff", ".bz2")
    assert corpus_format("c/data.jsonl.bz2") == ("jsonl", ".bz2")


def test_unescape_is_the_exact_inverse_of_wikiextractors_escape() -> None:
    import html

    for text in ["a & b", "<br> &amp; &lt;", "&copy 2019", "x &gt;&gt; y", "no escapes"]:
        assert wx.unescape_text(html.escape(text, quote=False)) == text
    assert wx.unescape_text("&amp;lt;") == "&lt;"


def test_malformed_plain_input_is_counted_with_reasons() -> None:
    good = '<doc id="{i}" url="u" title="T{i}">\nT{i}\n\n' + "word " * 12 + "{i}\n\n</doc>\n"
    data = (
        good.format(i=1)
        + "stray text after a doc\nmore of it\n"  # 1 record: text outside any <doc>
        + "</doc>\n"  # 1: a </doc> without an open <doc>
        + '<doc url="u" title="No id">\nNo id\n\nwords\n</doc>\n'  # 1: no id
        + '<doc id="3" url="u" title="broken\nbody\n</doc>\n'  # 1: malformed header
        + '<doc id="4" url="u" title="Unclosed">\nUnclosed\n\nbody\n'  # 1: cut by the next
        + good.format(i=5)
        + '<doc id="6" url="u" title="Bytes">\nBytes\n\nbad \xff\n</doc>\n'  # 1: not UTF-8
        + good.format(i=2)  # id 2 after 6: keyed 2@ordinal, still unique
        + '<doc id="8" url="u" title="Big">\nBig\n\n'
        + "x" * 300
        + "\n</doc>\n"  # too_large
        + '<doc id="9" url="u" title="Last">\nLast\n\ncut off here\n'  # 1: the file ends
    ).encode("utf-8")
    data = data.replace("bad \xff".encode(), b"bad \xff")
    recs = records(data, max_record_bytes=200)
    assert len(recs) == 11
    assert [r.title for r in recs if isinstance(r, Document)] == ["T1", "T5", "T2"]
    assert reasons(recs) == Counter(bad_record=7, too_large=1)
    details = " | ".join(r.detail for r in recs if isinstance(r, Dropped))
    for words in [
        "lines 7-8: text outside any <doc>",
        "</doc> without an open <doc>",
        "<doc> has no id",
        "malformed <doc> header",
        "not closed (a new <doc> starts at line",
        "not UTF-8",
        "over 200 bytes",
        "not closed (the file ends first)",
    ]:
        assert words in details, words
    assert len({r.id for r in recs}) == len(recs)
    # a file is judged on its first line: stray text there makes it no WikiExtractor file
    assert reasons(records(b"stray\n" + data)) == Counter(bad_file=1)
    assert recs[-3].id == doc_id(CORPUS, "AA/wiki_00", "2@6")  # the 7th <doc>: 0-based 6


def test_malformed_json_input_is_counted_with_reasons() -> None:
    lines = [
        json.dumps({"id": "1", "url": "u", "title": "A", "text": "a &amp; b " * 6}),
        "",  # a blank line is not a record
        "{not json",
        "[1, 2]",
        json.dumps({"url": "u", "title": "No id", "text": "words"}),
        json.dumps({"id": "3", "url": "u", "title": "B", "text": None}),
        json.dumps({"id": 4, "url": "u", "title": "C", "text": "numeric id"}),
    ]
    recs = records(("\n".join(lines) + "\n").encode())
    assert len(recs) == 6 and reasons(recs) == Counter(bad_record=4)
    assert recs[0].text == ("a & b " * 6).strip() and recs[-1].page_id == 4


def test_truncated_and_mislabelled_bz2_are_one_bad_file() -> None:
    data, relpath = form_file("bz2", "wiki_01")
    cut = records(data[: len(data) // 2], relpath)
    assert reasons(cut) == Counter(bad_file=1) and "past record 0" in cut[-1].detail
    # multistream: a complete first stream, then a cut one; the first stream's docs survive
    plain00, _ = form_file("plain", "wiki_00")
    two = bz2.compress(plain00) + data[: len(data) // 2]
    recs = records(two, relpath)
    assert [r.reason for r in recs if isinstance(r, Dropped)] == ["empty", "empty", "bad_file"]
    assert len(recs) == 5 and "ends before the end-of-stream" in recs[-1].detail
    not_bz2 = records(form_file("plain", "wiki_00")[0], relpath)
    assert reasons(not_bz2) == Counter(bad_file=1) and "not bz2 data" in not_bz2[0].detail
    assert records(b"", relpath) == []


def test_unknown_content_without_extension_is_one_bad_file() -> None:
    recs = records(b"just some notes\nnothing else\n", "notes")
    assert reasons(recs) == Counter(bad_file=1) and "not WikiExtractor output" in recs[0].detail
    assert records(b"\n\n", "notes") == []


def test_txt_file_holding_doc_blocks_is_read_as_wikiextractor() -> None:
    plain, _ = form_file("plain", "wiki_00")
    as_txt = records(plain, "all.txt", text_mode="blank")
    assert summary(as_txt) == summary(records(plain, "all"))
    assert not any("<doc" in r.text for r in as_txt if isinstance(r, Document))


def test_tiny_chunks_give_the_same_records(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {form: summary(records(*form_file(form, "wiki_01"))) for form in FORMS}
    monkeypatch.setattr(corpus_lines, "READ_CHUNK", 7)  # lines and headers cut across reads
    for form, want in expected.items():
        assert summary(records(*form_file(form, "wiki_01"))) == want, form


def _docs(run: Path) -> list[dict]:
    return [
        r for f in sorted((run / "docs").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]


def test_extract_stage_counts_and_forms(tmp_path: Path) -> None:
    runs = {}
    for form in ("plain", "json"):
        run = tmp_path / form
        corpus = TESTDATA / f"wikitext-en{FORMS[form]}"
        assert bertprep(["extract", "--corpus", str(corpus), "--output", str(run)]) == 0
        runs[form] = run
    rep = run_report.load_json(str(runs["plain"] / "report.json"))
    n_docs = sum(p.read_bytes().count(b"<doc ") for p in PLAIN_DIR.glob("AA/*"))
    assert rep["docs_in"] == n_docs == 6 and run_report.balanced(rep)
    assert (rep["docs_out"], rep["rejected"]) == (4, {"empty": 2})
    assert rep["by_source"] == {"corpus": {"docs_in": 6, "docs_out": 4}}
    docs = _docs(runs["plain"])
    assert [d["title"] for d in docs] == [
        "Jarred Shaw",
        "Harrow International School Shanghai",
        "1983 Welsh Professional Championship",
        "SS Clan Alpine (1899)",
    ]
    assert [d["page_id"] for d in docs] == [56564559, 56564573, 56573216, 56573217]
    # the --json form of the same files gives byte-identical documents (same names, same ids)
    for name in ("docs/corpus-AA__wiki_00.parquet", "docs/corpus-AA__wiki_01.parquet"):
        assert (runs["plain"] / name).read_bytes() == (runs["json"] / name).read_bytes()


def _wikiextractor(dump: Path, out: Path, *flags: str) -> list[Path]:
    """Run the real WikiExtractor CLI (the installed one, 3.x) on ``dump``; its files, sorted."""
    cmd = [sys.executable, "-m", "wikiextractor.WikiExtractor", str(dump), "-o", str(out)]
    done = proc.run([*cmd, "--processes", "1", "--no-templates", "-q", *flags], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return sorted(p for p in out.rglob("*") if p.is_file())


def test_real_wikiextractor_plain_and_json_compressed_agree(corpus_dir, tmp_path) -> None:
    """What the installed WikiExtractor writes, not only our slices: plain and --json --compress
    output of a real dump give the same records, one per <doc>."""
    dump = corpus_dir / "wikipedia" / "wiki2txt_enwiki-52-pages.xml"
    plain = _wikiextractor(dump, tmp_path / "plain")
    packed = _wikiextractor(dump, tmp_path / "json", "--json", "--compress")
    names = [p.relative_to(tmp_path / "plain").as_posix() for p in plain]
    assert [p.relative_to(tmp_path / "json").as_posix() for p in packed] == [
        f"{n}.bz2" for n in names
    ]
    total = 0
    for name, a, b in zip(names, plain, packed):
        data = a.read_bytes()
        as_plain, as_json = records(data, name), records(b.read_bytes(), f"{name}.bz2")
        assert summary(as_plain) == summary(as_json)
        n_docs = sum(line.startswith(b"<doc ") for line in data.split(b"\n"))
        assert len(as_plain) == n_docs and not reasons(as_plain) - Counter(empty=n_docs)
        total += n_docs
    assert total >= 2 and any(isinstance(r, Document) for r in as_plain)


@pytest.mark.shared
def test_shared_wikitext_en_every_doc_counted(shared_dir, tmp_path) -> None:
    """The 50 MB of WikiExtractor output in ../shared/corpora/wikitext-en: one document in per
    <doc> line, counts that add up, and the texts of benchmarks/bench_value.py's conversion
    (title line dropped, empty lines dropped) once WikiExtractor's escaping is undone."""
    from benchmarks.bench_value import wikiextractor_docs

    src = shared_dir / "wikitext-en"
    files = sorted(p for p in src.rglob("*") if p.is_file())
    n_docs, escaped = 0, 0
    for path in files:
        data = path.read_bytes()
        n_docs += sum(line.startswith(b"<doc ") for line in data.split(b"\n"))
        mine = records(data, path.relative_to(src).as_posix())
        theirs = list(wikiextractor_docs(data.decode("utf-8")))
        assert len(mine) == len(theirs)
        for rec, (ident, body) in zip(mine, theirs):
            assert rec.id == doc_id(CORPUS, path.relative_to(src).as_posix(), ident)
            paras = (textnorm.normalize(wx.unescape_text(x)) for x in body.split("\n"))
            want = "\n".join(p for p in paras if p)
            assert (rec.text if isinstance(rec, Document) else "") == want, rec.title
            assert isinstance(rec, Document) or rec.reason == "empty"
            escaped += "&" in body and wx.unescape_text(body) != body
    assert n_docs == 73716  # grep -c '^<doc ' over the 48 files
    run = tmp_path / "run"
    assert bertprep(["extract", "--corpus", str(src), "--output", str(run)]) == 0
    rep = run_report.load_json(str(run / "report.json"))
    assert rep["docs_in"] == n_docs and run_report.balanced(rep) and rep["cuts"] == []
    assert set(rep["rejected"]) <= {"empty", "too_short", "duplicate"}, rep["rejected"]
    assert len(_docs(run)) == rep["docs_out"]
    rejected = [
        r for f in (run / "rejected").glob("*.parquet") for r in pq.read_table(f).to_pylist()
    ]
    assert len(rejected) == sum(rep["rejected"].values()) + sum(rep["skipped"].values())
    counts = {k: rep[k] for k in ("docs_in", "docs_out", "skipped", "rejected")}
    print(f"wikitext-en: {n_docs} <doc>s, {escaped} bodies with escapes; {json.dumps(counts)}")
