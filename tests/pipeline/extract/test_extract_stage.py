"""End-to-end tests of `bertprep extract` on the bundled corpus, across runners and filesystems."""

from __future__ import annotations

import bz2
import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bertprep.cli import main as bertprep
from pipeline.common import run_report
from tests import proc
from tests.pipeline.memfs import MemFileSystem, UnreachableFileSystem  # noqa: F401 (registers)

REMNANTS = ("[[", "{{", "<ref", "{|", "|}")


def _small_inputs(corpus_dir: Path, tmp: Path) -> tuple[Path, Path]:
    wiki, books = tmp / "wiki", tmp / "books"
    wiki.mkdir()
    books.mkdir()
    for name in (
        "mediawiki-dump_fowiki-dump.xml.bz2",
        "wiki2txt_enwiki-52-pages.xml",
        "dumpster-dive_tinywiki-latest-pages-articles.xml",
    ):
        shutil.copy(corpus_dir / "wikipedia" / name, wiki / name)
    for name in ("1952-0.txt", "11-0.txt"):
        shutil.copy(corpus_dir / "books" / name, books / name)
    return wiki, books


def _docs(run: Path) -> list[dict]:
    rows = []
    for f in sorted((run / "docs").glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def _rejected(run: Path) -> list[dict]:
    rows = []
    for f in sorted((run / "rejected").glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def _file_bytes(run: Path) -> dict[str, bytes]:
    out = {}
    for sub in ("docs", "rejected"):
        for f in sorted((run / sub).glob("*.parquet")):
            out[f"{sub}/{f.name}"] = f.read_bytes()
    out["report.json"] = (run / "report.json").read_bytes()
    return out


@pytest.fixture(scope="module")
def full_run(corpus_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    rc = bertprep(
        [
            "extract",
            "--wikipedia",
            str(corpus_dir / "wikipedia" / "*"),
            "--books",
            str(corpus_dir / "books"),
            "--output",
            str(run),
        ]
    )
    assert rc == 0
    return run


def test_bundled_corpus_counts_add_up(full_run):
    rep = run_report.load_json(str(full_run / "report.json"))
    docs, dropped = _docs(full_run), _rejected(full_run)
    assert run_report.balanced(rep)
    assert rep["docs_out"] == len(docs) > 100
    assert rep["docs_in"] == len(docs) + len(dropped)
    assert rep["by_source"]["books"]["docs_out"] == 4
    assert rep["skipped"]["redirect"] >= 150  # gensim 100 + 52-pages 50 + viwiki 3 (SOURCES.md)
    # the viwiki sample ends without </mediawiki>; the cut is reported, its pages kept
    assert any("viwiki" in c["path"] for c in rep["cuts"])
    assert len({d["id"] for d in docs}) == len(docs)


def test_bundled_corpus_text_is_clean(full_run):
    for d in _docs(full_run):
        assert not any(r in d["text"] for r in REMNANTS), (d["title"], d["text"][:200])
        assert "Project Gutenberg" not in d["text"]
        assert d["text"] == d["text"].strip() and "\n\n" not in d["text"]


def test_rerun_refused_without_overwrite(full_run, corpus_dir, capsys):
    rc = bertprep(["extract", "--books", str(corpus_dir / "books"), "--output", str(full_run)])
    assert rc == 2
    assert "--overwrite" in capsys.readouterr().err


def test_duplicates_rejected_smallest_id_wins(corpus_dir, tmp_path):
    a, b = tmp_path / "in" / "a", tmp_path / "in" / "b"
    a.mkdir(parents=True)
    b.mkdir()
    shutil.copy(corpus_dir / "books" / "1952-0.txt", a / "wallpaper.txt")
    shutil.copy(corpus_dir / "books" / "1952-0.txt", b / "copy.txt")
    run = tmp_path / "run"
    assert (
        bertprep(["extract", "--books", str(tmp_path / "in" / "*" / "*.txt"), "--output", str(run)])
        == 0
    )
    docs, dropped = _docs(run), _rejected(run)
    assert len(docs) == 1 and len(dropped) == 1
    assert dropped[0]["reason"] == "duplicate"
    assert docs[0]["id"] < dropped[0]["id"]
    assert run_report.load_json(str(run / "report.json"))["rejected"] == {"duplicate": 1}
    # --no-dedup keeps both, written straight to RUN/docs, the same bytes with 2 workers
    kept = {}
    for workers in ("1", "2"):
        plain = tmp_path / f"plain-{workers}"
        args = ["extract", "--books", str(tmp_path / "in" / "*" / "*.txt"), "--output", str(plain)]
        assert bertprep([*args, "--no-dedup", "--direct_num_workers", workers]) == 0
        kept[workers] = _file_bytes(plain)
        rep = run_report.load_json(str(plain / "report.json"))
        assert rep["docs_out"] == 2 and rep["rejected"] == {} and not _rejected(plain)
        assert sorted(d["id"] for d in _docs(plain)) == sorted([docs[0]["id"], dropped[0]["id"]])
        assert not list((plain / "tmp" / "extract").glob("*"))
    assert kept["1"] == kept["2"]


def test_same_bytes_across_runners(corpus_dir, tmp_path):
    wiki, books = _small_inputs(corpus_dir, tmp_path)
    base = ["extract", "--wikipedia", str(wiki / "*"), "--books", str(books)]
    outputs = {}
    for name, beam_args in {
        "fnapi-1": [],
        "fnapi-2": ["--direct_num_workers", "2"],
        "bundle": ["--runner", "BundleBasedDirectRunner"],
    }.items():
        run = tmp_path / name
        assert bertprep(base + ["--output", str(run)] + beam_args) == 0
        outputs[name] = _file_bytes(run)
    assert outputs["fnapi-1"] == outputs["fnapi-2"] == outputs["bundle"]
    assert len(outputs["fnapi-1"]) >= 6


def test_memfs_filesystem_gives_same_documents(corpus_dir, tmp_path):
    wiki, books = _small_inputs(corpus_dir, tmp_path)
    MemFileSystem.put_tree(wiki, "memfs://in/wiki")
    MemFileSystem.put_tree(books, "memfs://in/books")
    assert (
        bertprep(
            [
                "extract",
                "--wikipedia",
                "memfs://in/wiki/*",
                "--books",
                "memfs://in/books",
                "--output",
                "memfs://run",
            ]
        )
        == 0
    )
    local = tmp_path / "local"
    assert (
        bertprep(
            [
                "extract",
                "--wikipedia",
                str(wiki / "*"),
                "--books",
                str(books),
                "--output",
                str(local),
            ]
        )
        == 0
    )
    expected = _file_bytes(local)
    got = {k: MemFileSystem.FILES.get(f"memfs://run/{k}") for k in expected}
    assert got == expected
    assert "memfs://run/docs/_SUCCESS" in MemFileSystem.FILES


def test_extract_never_imports_torch(corpus_dir, tmp_path):
    """A pipeline-only install has no torch: make it unimportable and run the stage."""
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('torch must not be imported')\n")
    env = dict(os.environ, PYTHONPATH=f"{fake}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = proc.run(
        [
            sys.executable,
            "-m",
            "bertprep",
            "extract",
            "--books",
            str(corpus_dir / "books"),
            "--output",
            str(tmp_path / "run"),
        ],
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(list((tmp_path / "run" / "docs").glob("*.parquet"))) == 4
    assert "apitools" not in out.stderr  # Beam's import-time warning is silenced


def test_no_inputs_is_a_clear_error(tmp_path, capsys):
    assert bertprep(["extract", "--output", str(tmp_path / "r")]) == 2
    assert "at least one input" in capsys.readouterr().err
    assert (
        bertprep(["extract", "--books", str(tmp_path / "nothing"), "--output", str(tmp_path / "r")])
        == 2
    )
    assert "no input files" in capsys.readouterr().err


def test_beam_counters_equal_the_report(corpus_dir, tmp_path):
    import argparse

    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    from pipeline.common import beam_runner
    from pipeline.extract import cli
    from pipeline.extract.transforms import ExtractDocuments
    from pipeline.extract.units import plan_units

    wiki, books = _small_inputs(corpus_dir, tmp_path)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--wikipedia", str(wiki / "*"), "--books", str(books), "--output", "x"]
    )
    units = plan_units(args.wikipedia, args.books, [], 16 << 20, split_multistream=True)
    run = str(tmp_path / "run")
    options = cli.options_from_args(args)
    result = beam_runner.run(
        lambda p: p | beam.Create(units) | ExtractDocuments(options, run),
        ["--runner", "FnApiRunner"],
    )
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("extract"))["counters"]
    }
    rep = run_report.load_json(f"{run}/report/extract.json")
    expected = {f"{kind}_{r}": n for kind in ("skipped", "rejected") for r, n in rep[kind].items()}
    assert {k: v for k, v in counters.items() if k != "docs_kept" and v} == expected
    assert counters["docs_kept"] - rep["rejected"].get("duplicate", 0) == rep["docs_out"]


def test_short_documents_rejected_too_short(tmp_path):
    corpus = tmp_path / "c.jsonl"
    long_text = " ".join(f"word{i}" for i in range(12))
    rows = ["only three words", "nine " * 9, long_text, "ten " * 10]
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    run = tmp_path / "run"
    assert bertprep(["extract", "--corpus", str(corpus), "--output", str(run)]) == 0
    rep = run_report.load_json(str(run / "report.json"))
    assert rep["docs_in"] == 4 and rep["docs_out"] == 2 and rep["rejected"] == {"too_short": 2}
    rejected = [
        r for f in (run / "rejected").glob("*.parquet") for r in pq.read_table(f).to_pylist()
    ]
    assert sorted(r["reason"] for r in rejected) == ["too_short", "too_short"]
    kept = [
        r["text"] for f in (run / "docs").glob("*.parquet") for r in pq.read_table(f).to_pylist()
    ]
    assert sorted(kept) == sorted([long_text, ("ten " * 10).strip()])


def test_unreachable_output_store_is_a_clear_error(corpus_dir, tmp_path, capsys):
    # gs:// without network or credentials: one line naming the path, exit 2, no traceback.
    books = tmp_path / "books"
    books.mkdir()
    shutil.copy(next((corpus_dir / "books").glob("*.txt")), books)
    code = bertprep(["extract", "--books", str(books), "--output", "downfs://bucket/run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot check downfs://bucket/run" in err and "network down" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    pattern = "downfs://bucket/books/*.txt"
    code = bertprep(["extract", "--books", pattern, "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot list downfs://bucket/books/*.txt" in err, err


def test_multistream_split_read_equals_whole_read(corpus_dir, tmp_path):
    """`bertprep recompress` then extract in byte ranges == extract of the plain dump."""
    src = (
        corpus_dir
        / "wikipedia"
        / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    )
    plain, multi = tmp_path / "plain", tmp_path / "multi"
    plain.mkdir()
    multi.mkdir()
    shutil.copy(src, plain / "dump.xml.bz2")
    assert (
        bertprep(
            [
                "recompress",
                str(plain / "dump.xml.bz2"),
                "--output",
                str(multi / "dump.xml.bz2"),
                "--pages-per-stream",
                "10",
            ]
        )
        == 0
    )
    assert (multi / "dump-index.txt.bz2").exists()
    runs = {}
    for name, inp, extra in (("whole", plain, []), ("split", multi, ["--range-mb", "0.2"])):
        run = tmp_path / f"run-{name}"
        assert (
            bertprep(
                ["extract", "--wikipedia", str(inp / "dump.xml.bz2"), "--output", str(run), *extra]
            )
            == 0
        )
        runs[name] = run
    assert len(list((runs["split"] / "docs").glob("*.parquet"))) >= 5  # several ranges
    assert _docs(runs["split"]) == _docs(runs["whole"])
    assert sorted(_rejected(runs["split"]), key=lambda r: r["id"]) == sorted(
        _rejected(runs["whole"]), key=lambda r: r["id"]
    )
    whole, split = (run_report.load_json(str(r / "report.json")) for r in runs.values())
    assert {k: whole[k] for k in ("docs_in", "docs_out", "skipped", "rejected")} == {
        k: split[k] for k in ("docs_in", "docs_out", "skipped", "rejected")
    }


def _template_parts(tmp: Path) -> Path:
    """Two parts of one dump: Template pages (and an article) in the first, users in the
    second, with enough pages in the second to split it into ranges."""
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
    first[2]["timestamp"] = "2018-05-05T10:00:00Z"  # the newest revision of the whole dump
    people = [
        {
            "title": f"Person {i}",
            "id": 10 + i,
            "text": f"Person {i} was {{{{alias|{1950 + i}}}}} and is famous {{{{year note}}}}.",
            "timestamp": "2010-01-01T00:00:00Z",
        }
        for i in range(6)
    ]
    parts = tmp / "parts"
    parts.mkdir()
    (parts / "part1.xml").write_bytes(make_dump(first, ns))
    (parts / "part2.xml.bz2").write_bytes(bz2.compress(make_dump(people, ns)))
    # a later input defining a title again: the first input's definition wins
    again = [{"title": "Template:Born", "ns": 10, "text": "died {{{1}}}", "id": 99}]
    again[0]["timestamp"] = "2011-01-01T00:00:00Z"
    (parts / "part3.xml").write_bytes(make_dump(again, ns))
    return parts


def test_expand_templates_across_dump_parts(tmp_path):
    parts = _template_parts(tmp_path)
    texts = {}
    for name, extra in (("whole", []), ("pinned", ["--dump-date", "20050101"])):
        run = tmp_path / f"run-{name}"
        args = ["extract", "--wikipedia", str(parts / "*"), "--output", str(run)]
        assert bertprep([*args, "--expand-templates", "--min-words", "0", *extra]) == 0
        texts[name] = {d["title"]: d["text"] for d in _docs(run)}
        rep = run_report.load_json(str(run / "report.json"))
        assert rep["docs_in"] == 11 and rep["docs_out"] == 7
        assert rep["skipped"] == {"namespace": 3, "redirect": 1}
    assert texts["whole"]["Alpha"] == "Alpha was born 1900 in a village by the sea."
    # part2 uses part1's definitions (through a template redirect) and the dump's newest date
    assert texts["whole"]["Person 3"] == "Person 3 was born 1953 and is famous as of 2018."
    assert texts["pinned"]["Person 3"] == "Person 3 was born 1953 and is famous as of 2005."
    # split into ranges, every range still expands with the other part's templates
    multi = tmp_path / "multi"
    multi.mkdir()
    for name in ("part1.xml", "part3.xml"):
        shutil.copy(parts / name, multi / name)
    recompress = ["recompress", str(parts / "part2.xml.bz2"), "--output"]
    assert bertprep([*recompress, str(multi / "part2.xml.bz2"), "--pages-per-stream", "1"]) == 0
    run = tmp_path / "run-split"
    args = ["extract", "--wikipedia", str(multi / "*.xml*"), "--output", str(run)]
    assert bertprep([*args, "--expand-templates", "--min-words", "0", "--range-mb", "1e-6"]) == 0
    assert len(list((run / "docs").glob("wikipedia-part2*.parquet"))) == 6
    assert {d["title"]: d["text"] for d in _docs(run)} == texts["whole"]
    # without expansion the calls are dropped
    run = tmp_path / "run-plain"
    args = ["extract", "--wikipedia", str(parts / "*"), "--output", str(run), "--min-words", "0"]
    assert bertprep(args) == 0
    assert {d["title"]: d["text"] for d in _docs(run)}["Person 3"] == "Person 3 was and is famous."


def test_bad_dump_date_is_a_clear_error(tmp_path, capsys):
    parts = _template_parts(tmp_path)
    args = ["extract", "--wikipedia", str(parts / "*"), "--output", str(tmp_path / "run")]
    assert bertprep([*args, "--expand-templates", "--dump-date", "2021-01-01"]) == 2
    err = capsys.readouterr().err
    assert "--dump-date must be a date as YYYYMMDD" in err and "Traceback" not in err


def test_finalize_moves_clean_units_and_survives_a_retry(tmp_path):
    from pipeline.common.parquet_io import write_records
    from pipeline.common.records import Document
    from pipeline.extract.transforms import _FinalizeUnitFn, tmp_docs_path

    run = str(tmp_path / "run")
    docs = [Document(f"id{i}", "corpus", "c.txt", "", f"text {i}", i) for i in range(3)]
    tmp = tmp_docs_path(run, "u")
    write_records(tmp, docs, Document)
    raw = Path(tmp).read_bytes()
    fn = _FinalizeUnitFn(run)
    stats = run_report.empty()
    joined = {"stats": [stats], "losers": []}  # the unit's side of the join by unit key
    assert list(fn.process(("u", joined))) == [run_report.merge([stats])]
    out = Path(run) / "docs" / "u.parquet"
    assert out.read_bytes() == raw and not Path(tmp).exists()  # moved, not re-encoded
    assert list(fn.process(("u", joined))) == [run_report.merge([stats])]  # a retried bundle
    assert out.read_bytes() == raw
    write_records(tmp, docs, Document)  # a unit with a duplicate is rewritten without it
    counted = run_report.empty()
    for d in docs:
        run_report.count(counted, d)
    (result,) = fn.process(("u", {"stats": [counted], "losers": [("id1", "id0")]}))
    assert result["docs_out"] == 2 and result["rejected"] == {"duplicate": 1}
    assert [d["id"] for d in _docs(Path(run))] == ["id0", "id2"]
    assert [r["reason"] for r in _rejected(Path(run))] == ["duplicate"]


def test_text_hash_normalises_like_the_regex(corpus_dir):
    import hashlib
    import re
    import sys as _sys

    from pipeline.extract.core import text_hash

    def by_regex(text):
        norm = re.sub(r"\s+", " ", text.casefold()).strip()
        return hashlib.sha256(norm.encode()).hexdigest()[:32]

    every_space = "".join(chr(c) for c in range(_sys.maxunicode + 1) if chr(c).isspace())
    texts = [f"  A{every_space}b \n\n C\u00a0D\u2003e ", "", "   ", "ẞtraße  ΣΑΣ"]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in corpus_dir.glob("books/*")]
    for text in texts:
        assert text_hash(text) == by_regex(text)
