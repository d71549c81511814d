"""Runner names, and the checks Beam leaves to run time, done before a stage does any work.

- ``--runner dask`` / ``DaskRunner`` are short names of Beam's
  ``apache_beam.runners.dask.dask_runner.DaskRunner``, which Beam itself only knows by that
  path (the path works too).
- DaskRunner needs a cluster address. Without ``--dask_client_address`` (or
  ``--dask_scheduler_file``) Beam would start a private ``LocalCluster`` for every pipeline
  (four per ``build``), sized to every core, in the launching process, and tear it down
  after; a run that means "on my cluster" would silently run on the laptop instead. It is a
  one-line error here; docs/dask.md starts a local cluster in one command.
- DaskRunner's partitions: Beam's default puts up to 128 elements of a ``Create`` in one
  partition, and our ``Create`` holds whole work units or files (a few dozen for a 1 GB
  input), so nothing ran in parallel. Unless ``--dask_npartitions`` or
  ``--dask_partition_size`` is given, each element gets its own partition, the granularity
  Dask's scheduler balances best; the bag keeps that partition count through every shuffle.
- PrismRunner, FlinkRunner and SparkRunner download a binary or a job-server jar the first
  time they run (``create_runner`` itself only builds the runner object). Offline, that is a
  traceback from deep inside the run; here it is fetched up front, and a failure is one line
  that says what to pass instead.
"""

from __future__ import annotations

import contextlib
import logging
import shutil

from ground.errors import UserError

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
SHORT_NAMES = {"dask": DASK_RUNNER, "daskrunner": DASK_RUNNER}
# Runners that fetch an artifact from the internet on first use: what, and the way around it.
DOWNLOADS = {
    "PrismRunner": (
        "the Prism binary (from GitHub)",
        "--prism_location PATH (a prism binary or release zip)",
    ),
    "FlinkRunner": (
        "the Flink job-server jar (from Maven Central)",
        "--flink_job_server_jar PATH, or --job_endpoint HOST:PORT of a running job server",
    ),
    "SparkRunner": (
        "the Spark job-server jar (from Maven Central)",
        "--spark_job_server_jar PATH, or --job_endpoint HOST:PORT of a running job server",
    ),
}


def canonical_runner(name: str) -> str:
    """The name Beam's ``create_runner`` understands for ``name`` (short names expanded)."""
    return SHORT_NAMES.get(name.lower(), name)


def is_dask(name: str) -> bool:
    return canonical_runner(name) == DASK_RUNNER


def dask_options(opts):
    """The ``DaskOptions`` view of ``opts``; a one-line error when Dask is not installed."""
    try:
        import dask.distributed  # noqa: F401  (what DaskRunner needs at run time)
        from apache_beam.runners.dask.dask_runner import DaskOptions
    except ImportError:
        raise UserError(
            "--runner DaskRunner needs Dask: pip install 'bertprep[dask]' (dask[distributed])"
        ) from None
    return opts.view_as(DaskOptions)


def set_dask_defaults(opts) -> None:
    """One ``Create`` element per Dask partition unless the user chose a partitioning."""
    dask = dask_options(opts)
    if dask.npartitions is None and dask.partition_size is None:
        dask.partition_size = 1


def check_dask(opts) -> None:
    """A cluster to connect to, that answers, and no ``--dry_run`` (DaskRunner would run the
    job)."""
    from apache_beam.options.pipeline_options import TestOptions  # Beam: stage time only

    dask = dask_options(opts)
    if not (dask.address or dask.scheduler_file):
        raise UserError(
            "--runner DaskRunner needs a running cluster: pass --dask_client_address HOST:PORT "
            "(or --dask_scheduler_file FILE); docs/dask.md starts one"
        )
    if opts.view_as(TestOptions).dry_run:
        raise UserError("--dry_run: DaskRunner has no dry run (it would run the job)")
    _reach_scheduler(dask)


def _reach_scheduler(dask) -> None:
    """Connect once before the stage clears its previous outputs: an unreachable scheduler
    must not cost the user a finished stage."""
    import distributed

    timeout = dask.timeout if isinstance(dask.timeout, int) else 10
    try:
        client = distributed.Client(
            address=dask.address,
            scheduler_file=dask.scheduler_file,
            timeout=timeout,
            set_as_default=False,
        )
    except (OSError, ValueError) as exc:  # refused / timed out; a bad scheduler file
        reason = " ".join(str(exc).split())
        raise UserError(f"could not reach the Dask scheduler: {reason}") from None
    client.close()


def download_runner(runner) -> str | None:
    """The ``DOWNLOADS`` key of a runner object, or None for a runner that fetches nothing."""
    for cls in type(runner).__mro__:
        if cls.__name__ in DOWNLOADS:
            return cls.__name__
    return None


def check_downloads(opts, runner) -> None:
    """Fetch what a Prism, Flink or Spark runner will need (cached by Beam for the run);
    one line naming the flag to pass when that fails, instead of a traceback mid-run."""
    from apache_beam.options.pipeline_options import JobServerOptions, PortableOptions

    name = download_runner(runner)
    if name is None or opts.view_as(PortableOptions).job_endpoint:
        return  # an external job server needs nothing local
    what, instead = DOWNLOADS[name]
    java = opts.view_as(JobServerOptions).job_server_java_launcher or "java"
    if name != "PrismRunner" and shutil.which(java) is None:
        raise UserError(f"--runner {name} starts a Java job server: no {java!r} on PATH")
    try:
        with _quiet(_FETCH_LOGGERS):
            _fetch(name, opts)
    except Exception as exc:  # Beam raises RuntimeError, ValueError or OSError here
        reason = " ".join(str(exc).split())[:300]
        raise UserError(
            f"--runner {name} could not get {what}: {reason}; offline, give {instead}, "
            "or use --runner FnApiRunner (this machine) or DaskRunner (a cluster, docs/dask.md)"
        ) from None


# Beam logs a multi-line warning before each download attempt; the outcome is our one line.
_FETCH_LOGGERS = ("apache_beam.utils.subprocess_server", "apache_beam.runners.portability")


@contextlib.contextmanager
def _quiet(names):
    loggers = [logging.getLogger(n) for n in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def _fetch(name: str, opts) -> None:
    """What the runner's job server does first when it starts: get its binary or jar."""
    from apache_beam.options.pipeline_options import JobServerOptions

    if name == "PrismRunner":
        from apache_beam.runners.portability.prism_runner import PrismJobServer

        PrismJobServer(opts).subprocess_cmd_and_endpoint()  # downloads, unzips, picks a port
        return
    if name == "FlinkRunner":
        from apache_beam.runners.portability.flink_runner import FlinkJarJobServer as Server
    else:
        from apache_beam.runners.portability.spark_runner import SparkJarJobServer as Server
    server = Server(opts)
    server.local_jar(server.path_to_jar(), opts.view_as(JobServerOptions).jar_cache_dir)
