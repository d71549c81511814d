"""pipeline.extract.wiki.dump on every real dump sample, against SOURCES.md and wikiextractor."""

from __future__ import annotations

import bz2
import hashlib
import html
import io
import json
import re
import sys
import tracemalloc
import unicodedata
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.common.records import REJECTED, SKIPPED, WIKIPEDIA, Document, Dropped, doc_id
from pipeline.extract.wiki.dump import WikiOptions, WikiSummary, extract_wikipedia
from pipeline.extract.wiki.xml_reader import EMPTY, PARSE_ERROR, READ_ERROR, open_local
from tests import proc
from tests.pipeline.extract.wiki.test_xml_reader import (
    GENSIM,
    SAMPLE_PATHS,
    SOURCES,
    TINY,
    VIWIKI,
    WP2TXT,
    _HugePageStream,
    make_dump,
    read_file,
    sample,
    sample_id,
    xml_bytes,
)

REMNANTS = ("[[", "{{", "<ref", "{|", "|}")
TEXT_REDIRECT = re.compile(r"\s*#redirect", re.IGNORECASE)


def run(data: bytes, relpath: str = "test.xml", **options):
    records = extract_wikipedia(io.BytesIO(data), relpath, WikiOptions(**options))
    return list(records), records.summary


_EXTRACTED: dict[tuple[str, str], tuple[list, WikiSummary]] = {}


def extract_file(path: Path) -> tuple[list, WikiSummary]:
    """Records and summary of a sample, extracted once per session per distinct content."""
    key = (path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    if key not in _EXTRACTED:
        with open_local(str(path)) as fh:
            records = extract_wikipedia(fh, path.name)
            _EXTRACTED[key] = (list(records), records.summary)
    return _EXTRACTED[key]


@pytest.fixture(scope="session")
def cli_docs(tmp_path_factory) -> dict[str, dict[str, str]]:
    """{sample name: {title: text}} from ``python -m wikiextractor.WikiExtractor --json
    --no-templates`` (the reference CLI, run once per session)."""
    out = {}
    for name in (GENSIM, WP2TXT):
        target = tmp_path_factory.mktemp("cli")
        cmd = [sys.executable, "-m", "wikiextractor.WikiExtractor", "--json", "--no-templates"]
        cmd += ["-q", "--processes", "1", "-o", str(target), str(sample(name))]
        res = proc.run(cmd, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        docs = {}
        for part in sorted(target.rglob("wiki_*")):
            for line in part.read_text(encoding="utf-8").splitlines():
                doc = json.loads(line)
                docs[doc["title"]] = html.unescape(doc["text"])  # the CLI escapes & < >
        out[name] = docs
    return out


@pytest.mark.parametrize("path", SAMPLE_PATHS, ids=sample_id)
def test_counts_add_up(path):
    records, summary = extract_file(path)
    pages, reader = read_file(path)
    n, namespaces, redirects, _, complete, _ = SOURCES[path.name]
    assert len(records) == summary.pages == n
    kept = [r for r in records if isinstance(r, Document)]
    dropped = [r for r in records if isinstance(r, Dropped)]
    assert summary.documents == len(kept)
    assert summary.pages == summary.documents + sum(summary.skipped.values()) + sum(
        summary.rejected.values()
    )
    assert Counter(r.reason for r in dropped if r.kind == SKIPPED) == Counter(summary.skipped)
    assert Counter(r.reason for r in dropped if r.kind == REJECTED) == Counter(summary.rejected)
    # Redirects: the <redirect/> pages SOURCES.md counts, plus pages whose text is a redirect
    # without the element (counted here straight from the raw wikitext).
    by_text = sum(1 for p in pages if not p.redirect and TEXT_REDIRECT.match(p.text))
    assert summary.skipped.get("redirect", 0) == redirects + by_text
    other_ns = sum(1 for p in pages if p.ns != 0 and not p.redirect)
    assert summary.skipped.get("namespace", 0) == other_ns
    assert (summary.cut is None) == complete
    assert set(summary.rejected) <= {"empty"}  # nothing in the real samples fails to clean
    assert summary.rejected.get("empty", 0) <= 1


def test_sample_specific_outcomes():
    _, tiny = extract_file(sample(TINY))
    assert tiny.skipped == {"redirect": 1}  # "Redirect page": #REDIRECT text, no element
    table_records, table = extract_file(sample("enwiki-table-markup.xml.bz2"))
    assert table.documents == 5 and table.siteinfo is None  # the CLI writes 0 for this file
    assert {r.title for r in table_records} >= {"Economy of Estonia"}


@pytest.mark.parametrize("path", SAMPLE_PATHS, ids=sample_id)
def test_no_markup_remnants(path):
    records, _ = extract_file(path)
    for doc in records:
        if isinstance(doc, Document):
            assert doc.text and doc.text == doc.text.strip()
            for mark in REMNANTS:
                assert mark not in doc.text, (doc.title, mark)
            assert all(line.strip() == line and line for line in doc.text.split("\n"))
            assert unicodedata.is_normalized("NFC", doc.text)


@pytest.mark.parametrize("path", SAMPLE_PATHS, ids=sample_id)
def test_ids(path):
    records, _ = extract_file(path)
    ids = [r.id for r in records]
    assert len(set(ids)) == len(ids)
    pages, _ = read_file(path)
    increasing = all(a.page_id < b.page_id for a, b in zip(pages, pages[1:]))
    if increasing:  # the normal case: id = hash(source, relpath, page id)
        assert ids == [doc_id(WIKIPEDIA, path.name, p.page_id) for p in pages]
    for rec, p in zip(records, pages):
        assert (rec.title, rec.source, rec.path) == (p.title, WIKIPEDIA, path.name)
        if isinstance(rec, Document):
            assert rec.page_id == p.page_id


def test_repeated_page_ids_get_distinct_ids():
    pages, _ = read_file(sample(TINY))
    assert Counter(p.page_id for p in pages)[1] == 7  # hand-edited sample: id 1 seven times
    records, _ = extract_file(sample(TINY))
    assert records[0].id == doc_id(WIKIPEDIA, TINY, 1)
    assert records[2].id == doc_id(WIKIPEDIA, TINY, "1@2")


@pytest.mark.parametrize("name", [GENSIM, WP2TXT])
def test_keeps_the_words_the_cli_keeps(name, cli_docs):
    records, _ = extract_file(sample(name))
    ours = {r.title: r.text for r in records if isinstance(r, Document)}
    cleaned = set(ours) | {
        r.title for r in records if isinstance(r, Dropped) and r.kind == REJECTED
    }
    reference = cli_docs[name]
    assert set(reference) == cleaned  # same pages cleaned as the CLI
    total = found = 0
    for title, text in reference.items():
        want = Counter(unicodedata.normalize("NFC", text).split())
        have = Counter(ours.get(title, "").split())
        total += sum(want.values())
        found += sum((want & have).values())
    assert total > 100_000
    assert found / total >= 0.95


def test_options_namespaces_and_headings():
    path = sample(VIWIKI)
    default, base = extract_file(path)
    _, summary = run(xml_bytes(VIWIKI), path.name, namespaces=frozenset({0, 4}))
    assert "namespace" not in summary.skipped
    # 6 ns-0 articles (as the CLI) + the ns-4 page are cleaned now
    assert summary.documents + summary.rejected.get("empty", 0) == 6 + 1
    headed_records, headed = run(xml_bytes(VIWIKI), path.name, keep_headings=True)
    assert headed.documents == base.documents
    for plain, rich in zip(default, headed_records):
        if isinstance(plain, Document):
            assert set(plain.text.split("\n")) < set(rich.text.split("\n"))


def test_deterministic():
    data = xml_bytes(VIWIKI)
    assert run(data) == run(data)


def test_empty_file():
    records, summary = run(b"")
    assert records == [] and summary.pages == 0 and summary.cut.reason == EMPTY


def test_truncated_bz2():
    compressed = sample(GENSIM).read_bytes()
    stream = bz2.open(io.BytesIO(compressed[: len(compressed) // 2]))
    records = extract_wikipedia(stream, GENSIM)
    got = list(records)
    full, _ = extract_file(sample(GENSIM))
    assert 0 < len(got) < len(full) and got == full[: len(got)]
    summary = records.summary
    assert summary.cut.reason == READ_ERROR and records.cut is summary.cut
    assert (
        summary.pages
        == len(got)
        == summary.documents + sum(summary.skipped.values()) + sum(summary.rejected.values())
    )


def test_xml_broken_mid_page():
    data = xml_bytes(VIWIKI)
    middle = data.index(b"<text", [m.start() for m in re.finditer(rb"<page>", data)][4]) + 400
    records, summary = run(data[:middle] + b"</text></page><oops & broken" + data[middle:])
    full, _ = run(data)
    assert records == full[:4] and summary.pages == 4
    assert summary.cut.reason == PARSE_ERROR and summary.cut.pages_before == 4


def test_page_that_makes_wikiextractor_raise():
    nested = "Intro. " + "{{#if:x|" * 500 + "deep" + "}}" * 500 + " Outro."
    data = make_dump(
        [
            {"title": "Before", "text": "A normal first article with some words."},
            {"title": "Nested", "text": nested},
            {"title": "After", "text": "A normal last article with some words."},
        ]
    )
    records, summary = run(data)
    assert [type(r).__name__ for r in records] == ["Document", "Dropped", "Document"]
    assert (records[1].reason, records[1].kind) == ("clean_error", REJECTED)
    assert "RecursionError" in records[1].detail
    assert summary.rejected == {"clean_error": 1} and summary.documents == 2


def test_50mb_page_rejected_too_large():
    tracemalloc.start()
    try:
        records = extract_wikipedia(io.BufferedReader(_HugePageStream(50_000_000)), "huge.xml")
        got = [(r.title, getattr(r, "reason", "")) for r in records]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [("Small", ""), ("Huge", "too_large"), ("After", "")]
    assert records.summary.rejected == {"too_large": 1}
    assert peak < 16_000_000


def test_utf16_dump_gives_the_same_documents():
    text = xml_bytes(VIWIKI).decode("utf-8")
    utf16 = ('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode("utf-16")
    (records16, s16), (records8, s8) = run(utf16, VIWIKI), run(text.encode(), VIWIKI)
    assert records16 == records8 and s16.documents == s8.documents == 5
    assert (s16.skipped, s16.rejected, s16.cut.reason) == (s8.skipped, s8.rejected, s8.cut.reason)


def test_expand_templates_with_dump_date():
    old = "2010-01-01T00:00:00Z"
    pages = [
        {
            "title": "Template:Year note",
            "ns": 10,
            "text": "as of {{CURRENTYEAR}}",
            "timestamp": old,
        },
        {
            "title": "Template:Born",
            "ns": 10,
            "text": "born {{{1}}}<noinclude>x</noinclude>",
            "timestamp": old,
        },
        {
            "title": "Person",
            "text": "She was {{born|1950}} and is famous {{year note}}.",
            "timestamp": "2019-06-30T23:59:59Z",
        },
    ]
    data = make_dump(pages, namespaces={0: "", 10: "Template"})
    records, summary = run(data, expand_templates=True)
    doc = records[-1]
    assert doc.text == "She was born 1950 and is famous as of 2019."  # newest revision's year
    assert summary.dump_date.startswith("2019-06-30") and summary.skipped == {"namespace": 2}
    named, _ = run(data, "enwiki-20210101-pages-articles.xml", expand_templates=True)
    assert named[-1].text.endswith("as of 2021.")  # the date in the file name wins
    pinned = datetime(2005, 1, 1, tzinfo=timezone.utc)
    opt, _ = run(data, "enwiki-20210101-x.xml", expand_templates=True, dump_date=pinned)
    assert opt[-1].text.endswith("as of 2005.")  # an explicit date wins over both
    plain, _ = run(data)
    assert plain[-1].text == "She was and is famous."  # default: templates dropped
