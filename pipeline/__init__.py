"""Apache Beam stages from raw corpora to masked-LM/NSP training instances.

Pure functions live in one module per role (``wiki_xml``, ``books``, ``textnorm``...); Beam
appears only in the ``*_transforms`` modules and the ``*_cli`` entry points. Never imports torch.
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
