"""The `bertprep` dispatcher: usage, errors, and --help that explains every option."""

from __future__ import annotations

import argparse
import importlib
import sys
import zipfile
from pathlib import Path

import pytest

from bertprep.cli import STAGES, main
from tests import proc
from tests.conftest import ROOT


def test_usage_lists_stages(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in STAGES)
    assert main(["--help"]) == 0


def test_unknown_stage(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown stage 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_option_has_help(name):
    module = importlib.import_module(STAGES[name].module)
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    missing = []
    for action in parser._actions:  # every option and sub-command argument
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                missing += [a.dest for a in sub._actions if not a.help]
        elif not action.help:
            missing.append(action.dest)
    assert not missing, f"options without help in bertprep {name}: {missing}"


def test_help_exits_zero_in_a_subprocess():
    out = proc.run(
        [sys.executable, "-m", "bertprep", "extract", "--help"],
        timeout=120,
    )
    assert out.returncode == 0
    assert "--wikipedia" in out.stdout and "Apache Beam" in out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once (pip wheel, no build isolation: offline)."""
    dist = tmp_path_factory.mktemp("dist")
    out = proc.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (built,) = dist.glob("bertprep-*.whl")
    return built


def test_wheel_carries_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt"):
        assert f"pipeline/segment/data/punkt_tab/english/{f}" in names
    assert "pipeline/segment/data/PUNKT_NOTICE.txt" in names
    assert {"bertprep/cli.py", "sharding/reader.py", "pipeline/extract/cli.py"} <= names
    assert not any(n.startswith("tests/") for n in names)


def test_bad_beam_options_are_clear_errors(tmp_path, capsys):
    extract = [
        "extract",
        "--books",
        str(ROOT / "corpus" / "books"),
        "--output",
        str(tmp_path / "r"),
    ]
    assert main([*extract, "--runner", "NoSuchRunner"]) == 2
    assert "NoSuchRunner" in capsys.readouterr().err
    assert main([*extract, "--runner", "DataflowRunner", "--project", "p"]) == 2
    err = capsys.readouterr().err
    assert "temp_location" in err or "[gcp]" in err
    assert not (tmp_path / "r" / "docs").exists()  # refused before any work


def test_pipeline_runs_from_the_installed_wheel(wheel, tmp_path):
    """Dataflow workers get the wheel, not the source tree: install it into a fresh venv (its
    dependencies come from the test venv's site-packages) and extract from another directory."""
    import site
    import venv

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = proc.run(
        [str(py), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"], timeout=60
    ).stdout.strip()
    # The test venv's packages as a plain path: its editable-install hook (a .pth in a site
    # dir) is not processed from here, so `pipeline` can only come from the wheel.
    deps = [p for p in site.getsitepackages() if p.endswith("site-packages")][0]
    with open(f"{purelib}/deps.pth", "w") as f:
        f.write(deps + "\n")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(purelib)
    run = tmp_path / "run"
    code = (
        "import pipeline, sys; from bertprep.cli import main; "
        "print(pipeline.__file__); sys.exit(main(sys.argv[1:]))"
    )
    res = proc.run(
        [
            str(py),
            "-c",
            code,
            "extract",
            "--books",
            str(ROOT / "corpus" / "books"),
            "--output",
            str(run),
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines()[0].startswith(purelib)
    assert len(list((run / "docs").glob("*.parquet"))) == 4
    # segmentation reads the Punkt parameters shipped inside the wheel
    res = proc.run(
        [str(py), "-c", code, "segment", "--output", str(run)],
        cwd=tmp_path,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(list((run / "sentences").glob("*.parquet"))) == 4
    for argv in (
        ["vocab", "--output", str(run), "--vocab-size", "2000"],
        ["instances", "--output", str(run), "--max-seq-length", "128", "--dupe-factor", "1"],
    ):
        res = proc.run([str(py), "-c", code, *argv], cwd=tmp_path, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
    assert len((run / "vocab" / "vocab.txt").read_text().splitlines()) == 2000
    assert (run / "seq128" / "_SUCCESS").exists() and list((run / "seq128").glob("*.hdf5"))


def test_report_of_a_non_run_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_output_under_a_file_is_one_line_not_a_traceback(tmp_path, capsys, corpus_dir):
    """--output below a plain file: the OSError becomes one line naming the path (exit 2)."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    books = str(corpus_dir / "books" / "1952-0.txt")
    assert main(["extract", "--books", books, "--output", str(afile / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a directory" in err[0] and str(afile) in err[0], err
