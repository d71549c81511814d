"""ExtractDocuments as a Beam composite: TestPipeline + assert_that on units of the bundled
corpus, as Beam's own examples test theirs. The composite writes RUN/docs, RUN/rejected and
RUN/report/extract.json; its output is the report's path. Expected files and counts come from
the pure functions it wraps (``extract_unit``, ``text_hash``), called here directly."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing import test_pipeline  # not TestPipeline: pytest would collect it
from apache_beam.testing.util import assert_that, equal_to

from pipeline.common import run_report
from pipeline.common.records import Document
from pipeline.extract.core import ExtractOptions, WikiContext, extract_unit, unit_templates
from pipeline.extract.transforms import ExtractDocuments, unit_order
from pipeline.extract.units import plan_units

RUNNER = "FnApiRunner"  # TestPipeline's default DirectRunner first tries Prism (a download)
FOWIKI = "mediawiki-dump_fowiki-dump.xml.bz2"  # 2 pages: MediaWiki:Logouttext (ns 8), 1 article
TINYWIKI = "dumpster-dive_tinywiki-latest-pages-articles.xml"  # 8 pages, a redirect among them
WALLPAPER = "1952-0.txt"


def _run(units, options: ExtractOptions, run: Path) -> str:
    report = str(run / "report" / "extract.json")
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(units) | ExtractDocuments(options, str(run))
        assert_that(out, equal_to([report]))
    return report


def _expected(units, options: ExtractOptions, wiki: WikiContext | None = None):
    """{unit key: (documents, dropped, stats)} from extract_unit, one unit at a time."""
    from pipeline.extract.wiki import clean

    clean.configure(expand_templates=options.expand_templates)
    out = {}
    for unit in units:
        stats = run_report.empty()
        records = list(extract_unit(unit, options, stats, wiki))
        docs = [r for r in records if isinstance(r, Document)]
        dropped = [r for r in records if not isinstance(r, Document)]
        out[unit.key] = (docs, dropped, stats)
    return out


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def _as_rows(records) -> list[dict]:
    return [dataclasses.asdict(r) for r in records]


def _report(path: str) -> dict:
    return json.loads(Path(path).read_text())


def test_real_units_give_extract_unit_records_and_merged_counts(corpus_dir, tmp_path):
    wiki = corpus_dir / "wikipedia"
    units = plan_units(
        [str(wiki / FOWIKI), str(wiki / TINYWIKI)], [str(corpus_dir / "books" / WALLPAPER)], []
    )
    assert len(units) == 3
    run = tmp_path / "run"
    report = _run(units, ExtractOptions(), run)
    expected = _expected(units, ExtractOptions())
    for key, (docs, dropped, _) in expected.items():
        assert _rows(run / "docs" / f"{key}.parquet") == _as_rows(docs), key
        assert _rows(run / "rejected" / f"{key}.parquet") == _as_rows(dropped), key
    # no two texts are equal in these inputs: nothing moved to a .dup file, tmp emptied
    assert not list((run / "rejected").glob("*.dup.parquet"))
    assert not list((run / "tmp" / "extract").glob("*"))
    merged = run_report.merge(stats for _, _, stats in expected.values())
    got = _report(report)
    assert got == merged and run_report.balanced(got)
    # by hand: one book kept; fowiki's MediaWiki: page skipped (namespace), its article kept
    assert got["by_source"]["books"] == {"docs_in": 1, "docs_out": 1}
    assert got["skipped"]["namespace"] >= 1 and got["skipped"]["redirect"] >= 1
    assert got["docs_out"] == sum(len(d) for d, _, _ in expected.values()) >= 5


def _wallpaper_twice(corpus_dir: Path, tmp: Path) -> list:
    a, b = tmp / "in" / "a", tmp / "in" / "b"
    a.mkdir(parents=True)
    b.mkdir()
    shutil.copy(corpus_dir / "books" / WALLPAPER, a / "wallpaper.txt")
    shutil.copy(corpus_dir / "books" / WALLPAPER, b / "copy.txt")
    return plan_units(
        [str(corpus_dir / "wikipedia" / FOWIKI)], [str(tmp / "in" / "*" / "*.txt")], []
    )


def test_duplicate_text_across_units_smallest_id_wins(corpus_dir, tmp_path):
    units = _wallpaper_twice(corpus_dir, tmp_path)
    run = tmp_path / "run"
    report = _run(units, ExtractOptions(), run)
    expected = _expected(units, ExtractOptions())
    books = {k: v for k, v in expected.items() if k.startswith("books-")}
    assert len(books) == 2 and all(len(d) == 1 for d, _, _ in books.values())
    (winner_key, ((winner,), _, _)), (loser_key, ((loser,), _, _)) = sorted(
        books.items(), key=lambda kv: kv[1][0][0].id
    )
    assert winner.text == loser.text and winner.id < loser.id
    assert _rows(run / "docs" / f"{winner_key}.parquet") == _as_rows([winner])
    assert _rows(run / "docs" / f"{loser_key}.parquet") == []  # rewritten without it
    (dup,) = _rows(run / "rejected" / f"{loser_key}.dup.parquet")
    assert (dup["id"], dup["reason"], dup["detail"]) == (
        loser.id,
        "duplicate",
        f"same text as {winner.id}",
    )
    assert list((run / "rejected").glob("*.dup.parquet")) == [
        run / "rejected" / f"{loser_key}.dup.parquet"
    ]
    got = _report(report)
    # by hand: 2 books + fowiki's 2 pages in; the copy rejected, the MediaWiki: page skipped
    assert got["docs_in"] == 4 and got["docs_out"] == 2
    assert got["rejected"] == {"duplicate": 1} and got["skipped"] == {"namespace": 1}
    assert got["by_source"]["books"] == {"docs_in": 2, "docs_out": 1}
    merged = run_report.merge(stats for _, _, stats in expected.values())
    run_report.reclassify(merged, "books", "duplicate")
    assert got == run_report.canonical(merged)


def test_no_dedup_writes_final_files_directly(corpus_dir, tmp_path):
    units = _wallpaper_twice(corpus_dir, tmp_path)
    run = tmp_path / "run"
    options = ExtractOptions(dedup=False)
    report = _run(units, options, run)
    expected = _expected(units, options)
    for key, (docs, dropped, _) in expected.items():
        assert _rows(run / "docs" / f"{key}.parquet") == _as_rows(docs), key
        assert _rows(run / "rejected" / f"{key}.parquet") == _as_rows(dropped), key
    assert not (run / "tmp").exists()  # nothing staged: the extraction wrote RUN/docs itself
    got = _report(report)
    assert got == run_report.merge(stats for _, _, stats in expected.values())
    assert got["docs_out"] == 3 and got["rejected"] == {}  # both copies kept


def _template_parts(tmp: Path) -> Path:
    """Template pages the bundled dumps lack (they hold none): two small parts of one dump,
    and a third defining a title again. Made like the stage test's parts."""
    from tests.pipeline.extract.wiki.test_xml_reader import make_dump

    ns = {0: "", 10: "Template"}
    first = [
        {"title": "Template:Born", "ns": 10, "text": "born {{{1}}}<noinclude>docs</noinclude>"},
        {"title": "Template:Alias", "ns": 10, "text": "#REDIRECT [[Template:Born]]"},
        {"title": "Template:Year note", "ns": 10, "text": "as of {{CURRENTYEAR}}"},
        {"title": "Alpha", "text": "Alpha was {{born|1900}} in a village by the sea.", "id": 4},
    ]
    for page in first:
        page["timestamp"] = "2012-01-01T00:00:00Z"
    first[2]["timestamp"] = "2018-05-05T10:00:00Z"  # the newest revision of all inputs
    people = [
        {
            "title": f"Person {i}",
            "id": 10 + i,
            "text": f"Person {i} was {{{{alias|{1950 + i}}}}} and is famous {{{{year note}}}}.",
            "timestamp": "2010-01-01T00:00:00Z",
        }
        for i in range(3)
    ]
    again = [{"title": "Template:Born", "ns": 10, "text": "died {{{1}}}", "id": 99}]
    again[0]["timestamp"] = "2011-01-01T00:00:00Z"
    parts = tmp / "parts"
    parts.mkdir()
    (parts / "part1.xml").write_bytes(make_dump(first, ns))
    (parts / "part2.xml").write_bytes(make_dump(people, ns))
    (parts / "part3.xml").write_bytes(make_dump(again, ns))
    return parts


def test_expand_templates_shared_by_all_units(corpus_dir, tmp_path):
    parts = _template_parts(tmp_path)
    units = plan_units([str(parts / "*"), str(corpus_dir / "wikipedia" / TINYWIKI)], [], [])
    run = tmp_path / "run"
    options = ExtractOptions(expand_templates=True, min_words=0)
    report = _run(units, options, run)
    # The shared definitions, gathered here unit by unit: the first unit in input order wins.
    from pipeline.extract.wiki import clean

    clean.configure(expand_templates=True)
    bodies, redirects, stamps = {}, {}, []
    for unit in sorted(units, key=unit_order):
        templates, newest = unit_templates(unit, options)
        for title, body in templates.bodies.items():
            if title not in bodies and title not in redirects:
                bodies[title] = body
        for title, target in templates.redirects.items():
            if title not in bodies and title not in redirects:
                redirects[title] = target
        stamps.append(newest)
    assert max(stamps) == "2018-05-05T10:00:00Z"
    wiki = WikiContext(clean.Templates(bodies, redirects), max(stamps))
    expected = _expected(units, options, wiki)
    texts = {}
    for key, (docs, dropped, _) in expected.items():
        rows = _rows(run / "docs" / f"{key}.parquet")
        assert rows == _as_rows(docs), key
        assert _rows(run / "rejected" / f"{key}.parquet") == _as_rows(dropped), key
        texts.update({r["title"]: r["text"] for r in rows})
    # by hand: part2 expands with part1's templates (through a redirect), part3's later
    # definition of Born loses, and CURRENTYEAR is the newest revision over every unit
    assert texts["Alpha"] == "Alpha was born 1900 in a village by the sea."
    assert texts["Person 2"] == "Person 2 was born 1952 and is famous as of 2018."
    assert _report(report) == run_report.merge(stats for _, _, stats in expected.values())
