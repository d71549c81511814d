"""Pipeline options: Beam arguments pass through untouched, with a safe local default runner.

Beam's default ``DirectRunner`` first tries the Prism runner, which downloads a binary (fails
offline) and then silently falls back. We pick the runner explicitly: with no ``--runner`` the
``FnApiRunner`` is used, in-process for one worker and multi-process (one Python process per
worker, real parallelism past the GIL) when ``--direct_num_workers`` is 2 or more. Any other
runner (``DataflowRunner``, ``BundleBasedDirectRunner``, ...) is used as given.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from bertprep.errors import UserError

DEFAULT_RUNNER = "FnApiRunner"


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Options for ``beam.Pipeline`` from the arguments a stage did not recognise."""
    unknown = [a for a in beam_args if a.startswith("--") is False and not _is_value(beam_args, a)]
    if unknown:
        raise UserError(f"unexpected arguments: {' '.join(unknown)}")
    opts = PipelineOptions(beam_args)
    std = opts.view_as(StandardOptions)
    if std.runner is None:
        std.runner = DEFAULT_RUNNER
    direct = opts.view_as(DirectOptions)
    workers = direct.direct_num_workers or 1
    if std.runner in ("FnApiRunner", "DirectRunner") and workers > 1:
        if direct.direct_running_mode in (None, "in_memory"):
            direct.direct_running_mode = "multi_processing"
    _validate(opts, std.runner)
    return opts


def _validate(opts: PipelineOptions, runner_name: str) -> None:
    """Beam's own option checks, up front, as one clear error instead of a traceback."""
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners import create_runner

    try:
        runner = create_runner(runner_name)
    except ValueError as exc:
        raise UserError(str(exc)) from None
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


def _is_value(args: list[str], a: str) -> bool:
    """Whether ``a`` is the value of the preceding ``--option`` (``--runner X``)."""
    i = args.index(a)
    return i > 0 and args[i - 1].startswith("--") and "=" not in args[i - 1]


def check_args(beam_args: list[str]) -> None:
    """Validate Beam arguments before a stage does any work (clear error, no traceback)."""
    pipeline_options(beam_args)
