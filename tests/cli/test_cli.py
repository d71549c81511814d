"""The `bertprep` dispatcher: usage, errors, and --help that explains every option."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import zipfile

import pytest

from bertprep.cli import STAGES, main
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
    out = subprocess.run(
        [sys.executable, "-m", "bertprep", "extract", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0
    assert "--wikipedia" in out.stdout and "Apache Beam" in out.stdout


def test_wheel_carries_package_data(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("bertprep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt"):
        assert f"pipeline/data/punkt_tab/english/{f}" in names
    assert "pipeline/data/PUNKT_NOTICE.txt" in names
    assert {"bertprep/cli.py", "sharding/reader.py", "pipeline/extract_cli.py"} <= names
    assert not any(n.startswith("tests/") for n in names)
