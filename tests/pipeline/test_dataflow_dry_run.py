"""Beam's DataflowRunner translates every Beam stage offline (``--dry_run True``), changing nothing.

The dry run builds the Dataflow job (pipeline proto, DoFns pickled, options validated) and stops
before staging and submission, so it needs the ``[gcp]`` extra but no network or credentials.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pipeline
from bertprep.cli import main as bertprep
from tests.conftest import CORPUS

DATAFLOW = [
    "--runner",
    "DataflowRunner",
    "--project",
    "demo-project",
    "--region",
    "us-central1",
    "--temp_location",
    "gs://demo-bucket/tmp",
    "--dry_run",
    "True",
]


def _tree(run: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``run``."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def _dry(capsys, *argv: str) -> str:
    assert bertprep([*argv, *DATAFLOW]) == 0
    err = capsys.readouterr().err
    assert "dry run: DataflowRunner translated the job" in err, err
    return err


def test_every_beam_stage_translates_for_dataflow_and_writes_nothing(two_books, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    _dry(capsys, "extract", "--books", str(two_books), "--output", str(fresh))
    wiki = str(CORPUS / "wikipedia" / "mediawiki-dump_fowiki-dump.xml.bz2")
    err = _dry(capsys, "extract", "--wikipedia", wiki, "--output", str(fresh), "--expand-templates")
    assert "transforms" in err  # the template branch and its shared file translate too
    assert not fresh.exists()

    run = str(tmp_path / "run")
    assert bertprep(["extract", "--books", str(two_books), "--output", run]) == 0
    before = _tree(Path(run))
    _dry(capsys, "extract", "--books", str(two_books), "--output", run, "--overwrite")
    _dry(capsys, "segment", "--output", run)
    assert _tree(Path(run)) == before  # the finished extraction was not cleared

    assert bertprep(["segment", "--output", run]) == 0
    _dry(capsys, "vocab", "--output", run, "--vocab-size", "2000")  # Beam word counting
    vocab = str(CORPUS / "vocab" / "bert-base-uncased-vocab.txt")
    assert bertprep(["vocab", "--output", run, "--vocab", vocab]) == 0
    before = _tree(Path(run))
    err = _dry(capsys, "instances", "--output", run, "--max-seq-length", "128")
    assert "transforms" in err
    assert _tree(Path(run)) == before
    assert not (Path(run) / "seq128").exists()


def test_beam_import_warning_about_apitools_is_filtered():
    quiet = [f for f in logging.getLogger().filters if isinstance(f, pipeline._QuietBeamImport)]
    assert quiet
    record = logging.LogRecord(
        "root", logging.WARNING, __file__, 1, "apitools not found, ...", (), None
    )
    assert not quiet[0].filter(record)
    other = logging.LogRecord("root", logging.WARNING, __file__, 1, "something else", (), None)
    assert quiet[0].filter(other)


def test_malformed_bucket_is_a_clear_error_not_a_network_wait(two_books, tmp_path, capsys):
    # Beam only warns about gs://b (a 1-letter bucket) and then tries to create a default
    # bucket over the network: offline, two minutes of retries and a traceback.
    bad = [a if a != "gs://demo-bucket/tmp" else "gs://b/tmp" for a in DATAFLOW]
    code = bertprep(["extract", "--books", str(two_books), "--output", str(tmp_path), *bad])
    err = capsys.readouterr().err
    assert code == 2 and "--temp_location gs://b/tmp: not a gs://BUCKET/PATH" in err, err
    assert "Traceback" not in err
