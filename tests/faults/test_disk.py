"""A full disk and a read-only output, made for real (tmpfs), for every command that writes:
one line naming the path and the cause, exit 2, no traceback, no ``_SUCCESS``, no temp file."""

from __future__ import annotations

import sys

import pytest

from bertprep.cli import main as bertprep
from tests import proc
from tests.faults.conftest import leftovers, one_line_error

FULL = "no space left on the device (the disk is full)"
READ_ONLY = "the file system is read-only"
TRAIN = ["--model", "tiny", "--recipe", "cpu-demo", "--threads", "1", "--seed", "1"]


@pytest.fixture(scope="module")
def trained(two_books, tmp_path_factory):
    """RUN (two bundled books, vocab 1000), a 2-step checkpoint in RUN/train and RUN/export."""
    run = tmp_path_factory.mktemp("run")
    build = ["build", "--books", str(two_books), "--output", str(run), "--vocab-size", "1000",
             "--max-seq-length", "128", "--validation-fraction", "0.3"]  # fmt: skip
    assert bertprep(build) == 0
    res = _train("--data", str(run / "seq128"), "--output", str(run / "train"), "--max-steps", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert bertprep(["export", str(run / "train"), str(run / "export")]) == 0
    return run


def _writing(command: str, out, trained, two_books, corpus_dir) -> list[str]:
    """The arguments of ``command`` writing its output to ``out`` (small real inputs)."""
    return {
        "extract": ["--books", str(two_books), "--output", str(out)],
        "build": ["--books", str(two_books), "--output", str(out), "--vocab-size", "1000"],
        "train": ["--data", str(trained / "seq128"), "--output", str(out), *TRAIN],
        "export": [str(trained / "train"), str(out)],
        "finetune": ["--model", str(trained / "export"), "--task", "sst2", "--output", str(out),
                     "--train", str(corpus_dir / "testdata/glue/SST-2/train-first-240.tsv")],
    }[command]  # fmt: skip


def _train(*args: str):
    return proc.run([sys.executable, "-m", "pretrain.train", *args, *TRAIN], timeout=300)


def test_extract_to_a_full_disk(two_books, small_disk, capfd):
    out = small_disk("full", "64k")
    assert bertprep(["extract", "--books", str(two_books), "--output", str(out)]) == 2
    assert one_line_error(capfd.readouterr().err, "extract").endswith(FULL)
    assert leftovers(out) == []


def test_build_to_a_full_disk(two_books, small_disk, capfd):
    out = small_disk("full", "400k")
    argv = ["build", "--books", str(two_books), "--output", str(out), "--vocab-size", "1000"]
    assert bertprep(argv) == 2
    err = capfd.readouterr().err
    assert one_line_error(err, "build").endswith(FULL) and "ERROR" not in err
    # the stages that finished keep their _SUCCESS (a rerun resumes after them); no temp file
    done = {p for p in leftovers(out) if p.endswith("_SUCCESS")}
    assert leftovers(out) == sorted(done) and "seq128/_SUCCESS" not in done


def test_train_checkpoint_to_a_full_disk(trained, small_disk):
    out = small_disk("full", "256k")
    res = _train("--data", str(trained / "seq128"), "--output", str(out / "t"), "--max-steps", "2")
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and FULL in res.stderr.strip().splitlines()[-1]
    assert leftovers(out) == []


def test_export_to_a_full_disk(trained, small_disk, capfd):
    out = small_disk("full", "256k")
    assert bertprep(["export", str(trained / "train"), str(out / "model")]) == 2
    line = one_line_error(capfd.readouterr().err, "export")
    assert line.endswith(f"{out / 'model'}: {FULL}"), line
    assert list(out.iterdir()) == []  # the half-written directory is gone


@pytest.mark.parametrize("command", ["extract", "build", "train", "export", "finetune"])
def test_read_only_output(command, trained, two_books, corpus_dir, small_disk, capfd):
    out = small_disk("ro", read_only=True) / "out"
    argv = _writing(command, out, trained, two_books, corpus_dir)
    assert bertprep([command, *argv]) == 2
    line = one_line_error(capfd.readouterr().err, command)
    assert line.endswith(READ_ONLY), line


@pytest.mark.parametrize("command", ["extract", "build", "train", "export", "finetune"])
@pytest.mark.parametrize("where", ["is a file", "under a file"])
def test_output_that_is_or_is_under_a_file(
    command, where, trained, two_books, corpus_dir, tmp_path, capfd
):
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = afile if where == "is a file" else afile / "out"
    argv = _writing(command, out, trained, two_books, corpus_dir)
    assert bertprep([command, *argv]) == 2
    line = one_line_error(capfd.readouterr().err, command)
    assert str(afile) in line and ("not a directory" in line or "is a file" in line), line
    assert afile.read_text() == "x"


def test_worker_failures_relayed_as_text_become_the_error_they_were():
    """Worker processes send only the text of their exception: it is parsed back, so a full
    disk in a worker is the same one line; anything else (a bug) keeps its traceback."""
    from ground.errors import UserError
    from pipeline.common.beam_runner import worker_cause

    text = (
        "Pipeline failed\nTraceback (most recent call last):\n  ...\nOSError: [Errno 28] No "
        "space left on device: '/out/a.tmp' -> '/out/b' [while running 'Build/Build']\n"
    )
    cause = worker_cause(RuntimeError(text))
    assert isinstance(cause, OSError) and cause.errno == 28 and cause.filename == "/out/a.tmp"
    user = worker_cause(RuntimeError("...\nground.errors.UserError: corpus file 'x' is bad\n"))
    assert isinstance(user, UserError) and str(user) == "corpus file 'x' is bad"
    assert worker_cause(RuntimeError("KeyError: 'paragraphs'")) is None
    try:
        raise RuntimeError("wrapped") from PermissionError(13, "Permission denied", "/p")
    except RuntimeError as exc:
        assert worker_cause(exc).filename == "/p"


def test_outputs_respect_the_umask(trained):
    """Shards, Parquet, checkpoints and the exported model get 0666/0777 minus the umask, as
    open() would give them (tempfile's 0600 left them unreadable to another user)."""
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    files = [
        *sorted((trained / "seq128").glob("*.hdf5"))[:1],
        *sorted((trained / "docs").glob("*.parquet"))[:1],
        *sorted((trained / "train").rglob("ckpt-*.pt"))[:1],
        trained / "export" / "model.safetensors",
    ]
    assert len(files) == 4, files
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, (f, oct(f.stat().st_mode))
    assert (trained / "export").stat().st_mode & 0o777 == 0o777 & ~mask
