"""PerFile as a Beam composite: TestPipeline + assert_that on real files, as Beam's own examples
test theirs. Each input file goes through the DoFn once; the counts are summed into one report,
whose path is the only element of the output."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing import test_pipeline  # not TestPipeline: pytest would collect it
from apache_beam.testing.util import assert_that, equal_to

from pipeline.common import run_report
from pipeline.common.file_stage import PerFile
from pipeline.common.parquet_io import write_records
from pipeline.common.records import Document
from pipeline.extract.core import ExtractOptions, extract_unit
from pipeline.extract.units import plan_units
from pipeline.segment.punkt_params import load_english
from pipeline.segment.segment import PunktSplitter, segment_document
from pipeline.segment.transforms import SegmentFileFn

# TestPipeline's default DirectRunner first tries Prism, which downloads a binary; the stages
# run on the FnApiRunner (pipeline.common.beam_runner), and so do these tests.
RUNNER = "FnApiRunner"
BOM = b"\xef\xbb\xbf"


class FileFactsFn(beam.DoFn):
    """Counts of one raw file; ``bom`` only for a file that starts with a UTF-8 BOM, so the sum
    has to merge dicts with different keys."""

    def process(self, path: str):
        raw = Path(path).read_bytes()
        facts = {"files": 1, "bytes": len(raw), "newlines": raw.count(b"\n")}
        if raw.startswith(BOM):
            facts["bom"] = 1
        yield facts


def test_counts_of_every_file_are_summed_into_one_report(two_books, tmp_path):
    paths = sorted(str(p) for p in two_books.iterdir())
    report = str(tmp_path / "report" / "facts.json")
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(paths) | PerFile(FileFactsFn(), report)
        assert_that(out, equal_to([report]))
    raws = [Path(q).read_bytes() for q in paths]
    expected = {
        "bom": 1,  # Alice (11-0.txt) starts with a BOM, The Yellow Wallpaper does not
        "bytes": sum(len(r) for r in raws),
        "files": 2,
        "newlines": sum(r.count(b"\n") for r in raws),
    }
    assert json.loads(Path(report).read_text()) == expected
    assert Path(report).read_bytes() == run_report.dumps(expected)  # sorted keys, stable bytes


def _docs_files(corpus_dir: Path, run: Path) -> list[str]:
    """RUN/docs/<unit>.parquet for a book and two small dumps, written from extract_unit."""
    from pipeline.extract.wiki import clean

    clean.configure(expand_templates=False)
    wiki = corpus_dir / "wikipedia"
    units = plan_units(
        [
            str(wiki / "mediawiki-dump_fowiki-dump.xml.bz2"),
            str(wiki / "dumpster-dive_tinywiki-latest-pages-articles.xml"),
        ],
        [str(corpus_dir / "books" / "1952-0.txt")],
        [],
    )
    files = []
    for unit in units:
        docs = [r for r in extract_unit(unit, ExtractOptions(), run_report.empty())]
        docs = [d for d in docs if isinstance(d, Document)]
        path = str(run / "docs" / f"{unit.key}.parquet")
        write_records(path, docs, Document)
        files.append(path)
    return files


def _rows(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_segment_dofn_on_real_docs_writes_one_file_per_input(corpus_dir, tmp_path):
    run = tmp_path / "run"
    files = _docs_files(corpus_dir, run)
    report = str(run / "report" / "segment.json")
    fn = SegmentFileFn(str(run), "english", load_english(), 2000)
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(files) | PerFile(fn, report)
        assert_that(out, equal_to([report]))
    # The same documents through the pure splitter, summed here.
    splitter = PunktSplitter(load_english(), "english")
    expected_counts = {"docs_in": 0, "docs_out": 0, "rejected_no_sentences": 0}
    for path in files:
        docs = _rows(path)
        expected_rows = []
        for d in docs:
            paragraphs, stats = segment_document(d["text"], splitter, 2000)
            for k, v in stats.items():
                expected_counts[k] = expected_counts.get(k, 0) + v
            expected_rows.append(
                {
                    "id": d["id"],
                    "source": d["source"],
                    "title": d["title"],
                    "paragraphs": paragraphs,
                }
            )
        expected_counts["docs_in"] += len(docs)
        expected_counts["docs_out"] += len(docs)
        out_path = run / "sentences" / Path(path).name  # output named after its input
        assert _rows(out_path) == expected_rows
    assert sorted(p.name for p in (run / "sentences").iterdir()) == sorted(
        Path(f).name for f in files
    )
    got = json.loads(Path(report).read_text())
    assert got == dict(sorted(expected_counts.items()))
    # 1 book + 1 fowiki article + tinywiki's articles, every one with sentences
    assert got["docs_in"] == got["docs_out"] > 2 and got["rejected_no_sentences"] == 0
    assert got["sentences"] > 100


def test_no_paths_no_report(tmp_path):
    """The sum has no default: no input, no report written and nothing in the output."""
    report = tmp_path / "report" / "none.json"
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        out = (
            p
            | beam.Create([], reshuffle=False).with_output_types(str)
            | PerFile(FileFactsFn(), str(report))
        )
        assert_that(out, equal_to([]))
    assert not report.exists()
