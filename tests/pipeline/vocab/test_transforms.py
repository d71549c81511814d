"""CountWords as a Beam composite: TestPipeline + assert_that on docs files of real books and a
real dump, as Beam's own word-count example is tested. The composite writes the counts file;
its output is the number of distinct words. Expected counts come from ``count_words`` (the pure
function the DoFn wraps) over all the texts at once, so the per-file counting, the cross-file
sum and the held-out filter are all checked."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.testing import test_pipeline  # not TestPipeline: pytest would collect it
from apache_beam.testing.util import assert_that, equal_to

from pipeline.common import run_report
from pipeline.common.parquet_io import write_records
from pipeline.common.records import BOOKS, Document, doc_id
from pipeline.extract.books import book_document
from pipeline.extract.core import ExtractOptions, extract_unit
from pipeline.extract.units import plan_units
from pipeline.vocab.files import counts_tsv_bytes, read_counts
from pipeline.vocab.transforms import CountWords, is_heldout
from pipeline.vocab.word_counts import count_words, make_pretokenizer

RUNNER = "FnApiRunner"  # TestPipeline's default DirectRunner first tries Prism (a download)


def _book(corpus_dir: Path, name: str) -> Document:
    doc, _ = book_document((corpus_dir / "books" / name).read_bytes(), name)
    assert isinstance(doc, Document)
    return doc


def _heldout_book() -> tuple[str, str]:
    """(id, relpath) of a book file name whose id is_heldout keeps out of vocab training."""
    for i in range(10_000):
        relpath = f"held-{i}.txt"
        if is_heldout(candidate := doc_id(BOOKS, relpath, "")):
            return candidate, relpath
    raise AssertionError("no held-out id in 10000 tries (1% expected)")


def _run(paths: list[str], lowercase: bool, strip_accents: bool | None, out: Path, distinct: int):
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        n = p | beam.Create(paths) | CountWords(lowercase, strip_accents, str(out))
        assert_that(n, equal_to([distinct]))


def test_counts_summed_over_files_heldout_docs_left_out(corpus_dir, tmp_path):
    wallpaper, alice = _book(corpus_dir, "1952-0.txt"), _book(corpus_dir, "11-0.txt")
    held_id, held_path = _heldout_book()  # the Yellow Wallpaper again, under a held-out id
    held = Document(held_id, BOOKS, held_path, wallpaper.title, wallpaper.text)
    assert not is_heldout(wallpaper.id) and not is_heldout(alice.id)
    first, second = str(tmp_path / "docs" / "a.parquet"), str(tmp_path / "docs" / "b.parquet")
    write_records(first, [wallpaper], Document)
    write_records(second, [alice, held], Document)  # the held-out copy must not count
    pretok = make_pretokenizer(True)
    expected = dict(count_words([wallpaper.text, alice.text], pretok))
    counts_path = tmp_path / "vocab" / "counts.tsv"
    _run([first, second], True, None, counts_path, len(expected))
    assert counts_path.read_bytes() == counts_tsv_bytes(expected)
    got = read_counts(counts_path)
    # a word of both books is the sum of its counts in each (counted apart, here)
    w, a = count_words([wallpaper.text], pretok), count_words([alice.text], pretok)
    assert got["the"] == w["the"] + a["the"] > 1000
    assert got["alice"] == a["alice"] > 300 and "Alice" not in got  # lowercased
    assert got["wallpaper"] == w["wallpaper"] > 10  # once, not twice: the copy is held out


def test_cased_and_accents_stripped_on_a_real_dump(corpus_dir, tmp_path):
    from pipeline.extract.wiki import clean

    clean.configure(expand_templates=False)
    (unit,) = plan_units(
        [str(corpus_dir / "wikipedia" / "mediawiki-dump_fowiki-dump.xml.bz2")], [], []
    )
    docs = [
        r
        for r in extract_unit(unit, ExtractOptions(), run_report.empty())
        if isinstance(r, Document)
    ]
    assert len(docs) == 1 and "Klaksvíkar" in docs[0].text  # Faroese: accents to strip
    wallpaper = _book(corpus_dir, "1952-0.txt")
    files = [str(tmp_path / "fo.parquet"), str(tmp_path / "en.parquet")]
    write_records(files[0], docs, Document)
    write_records(files[1], [wallpaper], Document)
    expected = dict(count_words([docs[0].text, wallpaper.text], make_pretokenizer(False, True)))
    counts_path = tmp_path / "counts.tsv"
    _run(files, False, True, counts_path, len(expected))
    got = read_counts(counts_path)
    assert got == expected
    assert "Klaksvikar" in got and "Klaksvíkar" not in got and "klaksvikar" not in got
    assert got["John"] > 10 and "john" not in got  # cased: the name stays capitalised
