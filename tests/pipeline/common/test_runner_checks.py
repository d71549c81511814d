"""Runner names and up-front runner checks: one clear line, exit 2, before any work.

Offline is simulated (Beam's downloads fail as they do without a network, into empty caches),
so the tests neither reach the internet nor depend on what ~/.apache_beam/cache holds.
"""

from __future__ import annotations

import socket
from urllib.error import URLError

import pytest

from bertprep.cli import main as bertprep
from pipeline.common import runner_checks


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Beam's downloads fail as offline, and its binary and jar caches are empty."""
    from apache_beam.runners.portability import prism_runner
    from apache_beam.utils import subprocess_server

    def no_network(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(prism_runner, "urlopen", no_network)
    monkeypatch.setattr(subprocess_server, "urlopen", no_network)
    monkeypatch.setattr(prism_runner.PrismJobServer, "BIN_CACHE", str(tmp_path / "prism"))
    monkeypatch.setattr(subprocess_server.JavaJarServer, "JAR_CACHE", str(tmp_path / "jars"))


@pytest.mark.parametrize(
    "runner, flag",
    [
        ("PrismRunner", "--prism_location"),
        ("FlinkRunner", "--flink_job_server_jar"),
        ("SparkRunner", "--spark_job_server_jar"),
    ],
)
def test_download_runners_offline_are_one_line(runner, flag, offline, two_books, tmp_path, capsys):
    args = ["extract", "--books", str(two_books), "--output", str(tmp_path / "run")]
    assert bertprep([*args, "--runner", runner]) == 2
    err = _one_line_error(capsys)
    assert f"--runner {runner}" in err
    # Flink and Spark first need java; with it, the jar they could not fetch is named
    assert ("could not get" in err and flag in err) or "on PATH" in err, err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_dask_short_names_and_default_partitions():
    pytest.importorskip("distributed")
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.dask.dask_runner import DaskOptions

    for name in ("dask", "DaskRunner", "daskrunner", runner_checks.DASK_RUNNER):
        assert runner_checks.canonical_runner(name) == runner_checks.DASK_RUNNER
    assert runner_checks.canonical_runner("DataflowRunner") == "DataflowRunner"
    opts = PipelineOptions(["--dask_client_address", "tcp://127.0.0.1:8786"])
    runner_checks.set_dask_defaults(opts)
    dask = opts.view_as(DaskOptions)
    assert (dask.partition_size, dask.npartitions) == (1, None)  # one unit per task
    opts = PipelineOptions(["--dask_npartitions", "7"])
    runner_checks.set_dask_defaults(opts)
    dask = opts.view_as(DaskOptions)
    assert (dask.partition_size, dask.npartitions) == (None, 7)  # the user's choice stands


def test_dask_without_a_cluster_is_one_line(two_books, tmp_path, capsys):
    pytest.importorskip("distributed")
    args = ["extract", "--books", str(two_books), "--output", str(tmp_path / "run")]
    assert bertprep([*args, "--runner", "DaskRunner"]) == 2
    assert "--dask_client_address" in _one_line_error(capsys)
    address = ["--dask_client_address", "tcp://127.0.0.1:8786"]
    assert bertprep([*args, "--runner", "dask", *address, "--dry_run", "True"]) == 2
    assert "no dry run" in _one_line_error(capsys)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = ["--dask_client_address", f"tcp://127.0.0.1:{port}"]
    assert bertprep([*args, "--runner", "dask", *address, "--dask_connection_timeout", "2"]) == 2
    assert "could not reach the Dask scheduler" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()  # refused before the stage touched its output
