"""`bertprep build`: raw inputs -> verified shards in one command; a killed build resumes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time

import pytest

from bertprep.cli import main as bertprep
from sharding.verify import verify_dir
from tests import proc


def _args(books, run):
    return [
        "build",
        "--books",
        str(books),
        "--output",
        str(run),
        "--vocab-size",
        "3000",
        "--dupe-factor",
        "1",
        "--num-shards",
        "2",
        "--group-tokens",
        "20000",
    ]


def _shards(run):
    return {
        f"{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for phase in ("seq128", "seq512")
        for p in sorted((run / phase).glob("*.hdf5"))
    }


@pytest.fixture(scope="module")
def reference(two_books, tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    assert bertprep(_args(two_books, run)) == 0
    return run


def test_build_writes_verified_shards_for_both_phases(reference):
    for phase in ("seq128", "seq512"):
        assert verify_dir(reference / phase) == []
        assert (reference / phase / "manifest.json").exists()
    for stage in ("docs", "sentences", "vocab"):
        assert (reference / stage / "_SUCCESS").exists()


def test_rerun_skips_finished_stages_and_shards(two_books, reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    # As if killed while writing seq512: its marker, manifest and one shard are gone.
    for name in ("_SUCCESS", "manifest.json", "shard_training_00001.hdf5"):
        (run / "seq512" / name).unlink()
    kept = (run / "seq512" / "shard_training_00000.hdf5").stat().st_mtime_ns
    assert bertprep(_args(two_books, run)) == 0
    err = capsys.readouterr().err
    assert all(f"{s} already complete, skipped" in err for s in ("extract", "segment", "vocab"))
    assert (run / "seq512" / "shard_training_00000.hdf5").stat().st_mtime_ns == kept
    assert _shards(run) == _shards(reference)


def test_sigkilled_build_resumes_to_identical_shards(two_books, reference, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "bertprep", *_args(two_books, run)]
    build = proc.popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (run / "sentences" / "_SUCCESS").exists() and build.poll() is None:
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        proc.kill_group(build)  # SIGKILL: the build and its Beam workers, mid-flight
    assert not (run / "seq128" / "_SUCCESS").exists()
    assert bertprep(_args(two_books, run)) == 0
    assert _shards(run) == _shards(reference)


def test_rerun_on_other_inputs_or_options_is_refused(two_books, reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    more = tmp_path / "books"
    shutil.copytree(two_books, more)
    (more / "extra.txt").write_text("A third book with a few words. " * 50)
    assert bertprep(_args(more, run)) == 2
    err = capsys.readouterr().err
    assert "docs was made from other inputs or other extract options" in err
    args = _args(two_books, run)
    assert bertprep([*args, "--max-sentence-chars", "500"]) == 2  # a segment option changed
    assert "sentences was made from other inputs or other segment options" in (
        capsys.readouterr().err
    )
    assert _shards(run) == _shards(reference)  # nothing was touched


def test_a_rerun_stage_makes_later_stages_run_again(two_books, reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "docs" / "_SUCCESS").unlink()  # as if extraction had been interrupted on a redo
    assert bertprep(_args(two_books, run)) == 0
    err = capsys.readouterr().err
    assert not any(f"{s} already complete" in err for s in ("extract", "segment", "vocab"))
    assert all(f"build: {s}\n" in err for s in ("extract", "segment", "vocab", "instances"))
    # the instances stage compares its inputs itself: the same sentences, nothing to redo
    assert "instances: every phase is already complete" in err
    assert _shards(run) == _shards(reference)


def test_temp_files_of_an_interrupted_run_do_not_survive_a_rerun(tmp_path, two_books):
    """A killed write leaves a hidden temp file (``*`` never lists it); the rerun removes it."""
    run = tmp_path / "run"
    args = ["build", "--books", str(two_books), "--output", str(run), "--vocab-size", "2000"]
    args += ["--max-seq-length", "128", "--dupe-factor", "1"]
    assert bertprep(args) == 0
    orphans = [
        run / "docs" / ".x.parquet.tmp-0123456789ab",
        run / "sentences" / ".y.parquet.abcdef.tmp",
        run / "vocab" / ".vocab.txt.abcdef.tmp",
        run / "seq128" / ".shard_training_00000.hdf5.abcdef.tmp",
    ]
    for p in orphans:
        p.write_bytes(b"half a file")
    assert bertprep(args) == 0  # every stage complete: skipped, and its orphans removed
    left = [p.name for p in orphans if p.exists()]
    assert left == [], left
    for p in orphans:
        p.write_bytes(b"half a file")
    assert bertprep(args + ["--overwrite"]) == 0  # every stage redone: the same
    left = [p.name for p in orphans if p.exists()]
    assert left == [], left
