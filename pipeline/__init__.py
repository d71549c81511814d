"""Apache Beam stages from raw corpora to masked-LM/NSP training instances.

One folder per stage, each with the same plan: ``cli`` (argparse -> the stage's options
dataclass -> one call), ``transforms`` (Beam wiring only) and pure modules that hold every
decision (no Beam, no paths):

- ``extract/``: Wikipedia dumps (``wiki/``), books and corpora -> RUN/docs (Parquet).
- ``segment/``: RUN/docs -> RUN/sentences (Punkt, CJK).
- ``vocab/``: RUN/docs -> RUN/vocab (WordPiece trained on Beam word counts, or imported).
- ``instances/``: RUN/sentences + RUN/vocab -> RUN/seq128, RUN/seq512 (shards via
  :mod:`sharding`). The one stage that reads another stage's files: the vocab.
- ``common/``: what every stage shares (Beam file access, runner options, Parquet records,
  text normalisation, the run report and its ``_SUCCESS`` marker).
- ``build.py``: every stage in order into one run directory.

Beam is imported only by ``common/{fs,beam_runner,file_stage}`` and each stage's ``cli`` and
``transforms``. Never imports torch or :mod:`pretrain`.
"""

import logging as _logging


class _QuietBeamImport(_logging.Filter):
    """Drops Beam's import-time warning that apitools is missing.

    Beam prints it on every import without the ``[gcp]`` extra, which brings apitools; nothing
    outside Dataflow and BigQuery needs it, so it only alarms users of a pipeline-only install.
    """

    def filter(self, record: _logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


_logging.getLogger().addFilter(_QuietBeamImport())
