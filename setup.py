from setuptools import setup

# Shim for Beam/Dataflow `--setup_file ./setup.py`; all metadata lives in pyproject.toml.
setup()
