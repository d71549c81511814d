"""Bad inputs made from the real bundled data: each is a counted skip with a reason or one
clear line, never a traceback, never Beam's ERROR log, never a silent loss; counts add up."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.parquet as pq

from bertprep.cli import main as bertprep
from pipeline.common import run_report
from pipeline.common.parquet_io import iter_documents
from pipeline.extract import books, core
from tests.faults.conftest import one_line_error

TINY = "wikipedia/dumpster-dive_tinywiki-latest-pages-articles.xml"  # 8 pages (SOURCES.md)


def _texts(run) -> list[str]:
    return [
        d.text for f in sorted((run / "docs").glob("*.parquet")) for d in iter_documents(str(f))
    ]


def _report(run) -> dict:
    report = run_report.load_json(str(run / "report.json"))
    assert run_report.balanced(report), report
    return report


def test_control_character_in_the_first_page_loses_no_page(corpus_dir, tmp_path, capfd):
    """XML 1.0 forbids U+0001: expat stopped at it and every later page was lost. The byte is
    removed and counted; the documents equal those of the clean dump."""
    xml = (corpus_dir / TINY).read_bytes()
    at = xml.index(b"<text") + xml[xml.index(b"<text") :].index(b">") + 20  # in page 1's text
    bad = tmp_path / "bad" / "tiny.xml"
    bad.parent.mkdir()
    bad.write_bytes(xml[:at] + b"\x01" + xml[at:])
    clean = tmp_path / "clean" / "tiny.xml"
    clean.parent.mkdir()
    clean.write_bytes(xml)
    for src in (bad, clean):
        assert (
            bertprep(["extract", "--wikipedia", str(src), "--output", str(src.parent / "run")]) == 0
        )
    assert "Traceback" not in capfd.readouterr().err
    report = _report(bad.parent / "run")
    assert report["notes"].get("xml_control_bytes_removed") == 1 and report["cuts"] == []
    assert _texts(bad.parent / "run") == _texts(clean.parent / "run")
    assert len(_texts(clean.parent / "run")) >= 3


def test_unreadable_book_is_counted_and_the_run_goes_on(two_books, tmp_path, monkeypatch, capfd):
    """A book that cannot be opened (root ignores file modes, so the open is made to fail as
    it does for another user: PermissionError) is one ``unreadable`` rejection, named in
    RUN/rejected; the other book is kept."""
    victim = sorted(two_books.glob("*.txt"))[0]
    real_open = core.fs.open_read

    def open_read(path):
        if path.endswith(victim.name):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path)

    monkeypatch.setattr(core.fs, "open_read", open_read)
    run = tmp_path / "run"
    assert bertprep(["extract", "--books", str(two_books), "--output", str(run)]) == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ERROR" not in err
    report = _report(run)
    assert report["rejected"] == {"unreadable": 1} and report["docs_out"] == 1
    rejected = [
        r for f in (run / "rejected").glob("*.parquet") for r in pq.read_table(f).to_pylist()
    ]
    assert [r["reason"] for r in rejected] == ["unreadable"]
    assert "permission denied" in rejected[0]["detail"] and rejected[0]["path"] == victim.name


def test_parquet_corpus_without_the_text_column(tmp_path, capfd):
    """Said by the launcher from the file's footer: one line, before Beam runs (no ERROR log)."""
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"body": ["A sentence of text. Another one here."]}), path)
    assert bertprep(["extract", "--corpus", str(path), "--output", str(tmp_path / "run")]) == 2
    err = capfd.readouterr().err
    assert "ERROR" not in err
    line = one_line_error(err, "extract")
    assert "has no column 'text' (columns: body); --text-field" in line


def test_every_input_failing_stops_extract_and_build(corpus_dir, tmp_path, capfd):
    """A gzip file named .bz2: extract names it and exits 2 without _SUCCESS; build stops at
    extract instead of at instances with "0 instances cannot fill 1 shards"."""
    dump = tmp_path / "in" / "dump.xml.bz2"
    dump.parent.mkdir()
    dump.write_bytes(gzip.compress((corpus_dir / TINY).read_bytes(), mtime=0))
    run = tmp_path / "run"
    assert bertprep(["extract", "--wikipedia", str(dump), "--output", str(run)]) == 2
    line = one_line_error(capfd.readouterr().err, "extract")
    assert "no document kept from 1 input unit(s)" in line and "gzip data" in line, line
    assert not (run / "docs" / "_SUCCESS").exists()
    assert bertprep(["build", "--wikipedia", str(dump), "--output", str(tmp_path / "b")]) == 2
    err = capfd.readouterr().err
    assert "gzip data" in one_line_error(err, "build") and "instances" not in err


def test_a_book_past_the_cap_is_rejected_without_reading_it_whole(tmp_path, monkeypatch):
    """Memory: a book is read up to its cap plus one byte (benchmarks/bench_book_memory.py
    measures the peak); past the cap it is ``too_large``."""
    cap = books.BookOptions().max_bytes
    rec, _ = books.book_document(b"a" * (cap + 1), "big.txt")
    assert rec.reason == "too_large" and rec.detail == f"more than {cap} bytes"

    class Counting:
        asked: list[int] = []

        def __init__(self, path):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n=-1):
            Counting.asked.append(n)
            return b"x" * (cap + 1)

    monkeypatch.setattr(core.fs, "open_read", Counting)
    unit = core.Unit("books", "big.txt", str(tmp_path / "big.txt"))
    recs = list(core.extract_unit(unit, core.ExtractOptions(), run_report.empty()))
    assert Counting.asked == [cap + 1] and recs[0].reason == "too_large"


def test_a_book_without_paragraph_breaks_keeps_its_text(corpus_dir):
    """A whole book on one line is one block; naming Project Gutenberg once in it (as the last
    line of the body often does) must not make it boilerplate and drop the book."""
    raw = (corpus_dir / "books" / "345-8.txt").read_bytes()
    one_line = b" ".join(raw.split())
    rec, _ = books.book_document(one_line, "dracula.txt")
    assert rec.text.startswith("DRACULA") or len(rec.text) > 800_000, getattr(rec, "reason", "")
