"""Pipeline options: Beam arguments pass through untouched, with a safe local default runner.

Beam's default ``DirectRunner`` first tries the Prism runner, which downloads a binary (fails
offline) and then silently falls back. We pick the runner explicitly: with no ``--runner`` the
``FnApiRunner`` is used, in-process for one worker and multi-process (one Python process per
worker, real parallelism past the GIL) when ``--direct_num_workers`` is 2 or more. Any other
runner (``DataflowRunner``, ``BundleBasedDirectRunner``, ...) is used as given; ``dask`` and
``DaskRunner`` name Beam's DaskRunner (docs/dask.md). What each runner needs (a Dask cluster
address, a Prism binary, a Flink or Spark jar) is checked up front by
:mod:`pipeline.common.runner_checks`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from apache_beam.options.pipeline_options import (  # Beam (~1 s): only once a pipeline is built
    DirectOptions,
    PipelineOptions,
    StandardOptions,
    TestOptions,
)

from ground.errors import DryRun, UserError
from pipeline.common import runner_checks

DEFAULT_RUNNER = "FnApiRunner"
# Cloud Storage bucket names: 3-63 of [a-z0-9-_.], starting and ending with a letter or digit.
_BUCKET = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])(/.*)?")


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Options for ``beam.Pipeline`` from the arguments a stage did not recognise."""
    unknown = [a for a in beam_args if a.startswith("--") is False and not _is_value(beam_args, a)]
    if unknown:
        raise UserError(f"unexpected arguments: {' '.join(unknown)}")
    opts = PipelineOptions(beam_args)
    std = opts.view_as(StandardOptions)
    if std.runner is None:
        std.runner = DEFAULT_RUNNER
    std.runner = runner_checks.canonical_runner(std.runner)
    if runner_checks.is_dask(std.runner):
        runner_checks.set_dask_defaults(opts)
    direct = opts.view_as(DirectOptions)
    workers = direct.direct_num_workers or 1
    if std.runner in ("FnApiRunner", "DirectRunner") and workers > 1:
        if direct.direct_running_mode in (None, "in_memory"):
            direct.direct_running_mode = "multi_processing"
    key = tuple(beam_args)
    if key not in _VALIDATED:  # check_args and run see the same arguments: validate once
        _validate(opts, std.runner)
        _VALIDATED.add(key)
    return opts


_VALIDATED: set[tuple[str, ...]] = set()


def is_dry_run(beam_args: list[str]) -> bool:
    """Whether ``--dry_run True`` was given: the stage must translate its job and change nothing."""
    return bool(PipelineOptions(beam_args).view_as(TestOptions).dry_run)


def run(build: Callable, beam_args: list[str]):
    """Build a pipeline with ``build(p)``, run it to completion on the chosen runner and return
    Beam's ``PipelineResult`` (its ``metrics()`` hold the stage's counters).

    Raises:
        DryRun: after ``--dry_run True``, once the runner translated the job without running it
            (Dataflow's dry run builds the job proto and stops before staging or submission).
    """
    import apache_beam as beam  # Beam (~1 s): only once a pipeline is built

    options = pipeline_options(beam_args)
    dask = runner_checks.is_dask(options.view_as(StandardOptions).runner)
    p = beam.Pipeline(options=options)
    build(p)
    quiet = [logging.getLogger(name) for name in _WORKER_ERROR_LOGGERS]
    levels = [log.level for log in quiet]
    for log in quiet:  # a worker's failure is raised below: as one line, or with its traceback
        log.setLevel(logging.CRITICAL)
    try:
        try:
            result = p.run()
        except OSError as exc:  # DaskRunner connects to its scheduler here
            if not dask:
                raise
            reason = " ".join(str(exc).split())
            raise UserError(f"could not reach the Dask scheduler: {reason}") from None
        try:
            result.wait_until_finish()
        finally:
            if dask:  # Beam opens a Dask client per pipeline and never closes it
                result.client.close()
    except Exception as exc:
        cause = worker_cause(exc)
        if cause is None or isinstance(exc, UserError):
            raise
        raise cause from None
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)
    if options.view_as(TestOptions).dry_run:
        runner = options.view_as(StandardOptions).runner
        job = getattr(result, "job", None)
        proto = getattr(job, "proto_pipeline", None)
        size = f" ({len(proto.components.transforms)} transforms)" if proto is not None else ""
        raise DryRun(f"dry run: {runner} translated the job{size}; nothing ran or was written")
    return result


# Where Beam logs a DoFn's exception (in process; relayed from worker processes) before the
# runner raises it: the same failure, said twice, the first time as a traceback.
_WORKER_ERROR_LOGGERS = (
    "apache_beam.runners.common",
    "apache_beam.runners.worker.sdk_worker",
    "apache_beam.runners.portability.local_job_service",
)
_OS_ERROR = re.compile(r"(?:OSError|\w+Error): \[Errno (\d+)\] ([^:\n]+)(?:: '([^'\n]*)')?")
_USER_ERROR = re.compile(r"(?:ground\.errors\.)?UserError: ([^\n]+)")


def worker_cause(exc: BaseException) -> BaseException | None:
    """The OSError (a full disk, a read-only output) or UserError that a worker raised, out of
    the RuntimeError the runner wraps it in; ``None`` for anything else (a bug: its traceback
    stays). In-process runners chain the original; worker processes only send its text."""
    seen = exc
    while seen is not None:
        if isinstance(seen, (OSError, UserError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    user = _USER_ERROR.findall(text)
    if user:
        return UserError(user[-1])
    found = _OS_ERROR.findall(text)
    if found:
        code, why, path = found[-1]
        return OSError(int(code), why, path or None)
    return None


def _validate(opts: PipelineOptions, runner_name: str) -> None:
    """Beam's own option checks, up front, as one clear error instead of a traceback."""
    from apache_beam.options.pipeline_options_validator import (
        PipelineOptionsValidator,  # Beam (~1 s): only once a pipeline is built
    )
    from apache_beam.runners import create_runner  # Beam (~1 s): only once a pipeline is built

    if runner_checks.is_dask(runner_name):
        runner_checks.check_dask(opts)
    try:
        runner = create_runner(runner_name)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    runner_checks.check_downloads(opts, runner)
    if runner_name == "DataflowRunner":
        _check_buckets(opts)  # before Beam's validator, which would fall back to the network
    errors = PipelineOptionsValidator(opts, runner).validate()
    if errors:
        raise UserError("invalid Beam options: " + " ".join(e.strip() for e in errors))
    if runner_name == "DataflowRunner":
        try:
            from apache_beam.runners.dataflow.internal import apiclient  # noqa: F401
        except ImportError:
            raise UserError(
                "the Dataflow runner needs Beam's GCP extras: pip install 'bertprep[gcp]'"
            ) from None


def _check_buckets(opts: PipelineOptions) -> None:
    """A malformed ``--temp_location``/``--staging_location`` is an error here: Beam only warns,
    then falls back to creating a default bucket (minutes of network retries offline)."""
    from apache_beam.options.pipeline_options import (
        GoogleCloudOptions,  # Beam (~1 s): only once a pipeline is built
    )

    gcp = opts.view_as(GoogleCloudOptions)
    for name in ("temp_location", "staging_location"):
        value = getattr(gcp, name)
        if value and not _BUCKET.fullmatch(value):
            raise UserError(
                f"--{name} {value}: not a gs://BUCKET/PATH with a valid bucket name "
                "(3-63 lowercase letters, digits, '-', '_' or '.')"
            )


def _is_value(args: list[str], a: str) -> bool:
    """Whether ``a`` is the value of the preceding ``--option`` (``--runner X``)."""
    i = args.index(a)
    return i > 0 and args[i - 1].startswith("--") and "=" not in args[i - 1]


def check_args(beam_args: list[str]) -> None:
    """Validate Beam arguments before a stage does any work (clear error, no traceback)."""
    pipeline_options(beam_args)
