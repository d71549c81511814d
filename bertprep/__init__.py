"""bertprep: BERT pretraining data pipeline, shard contract and PyTorch runner.

The distribution has four import packages:

- ``pipeline``: Apache Beam stages from raw corpora to training instances (no torch).
- ``sharding``: the HDF5 shard contract (h5py + numpy only).
- ``pretrain``: the PyTorch runner (no Beam).
- ``bertprep``: this package; only the ``bertprep`` command dispatcher, which imports a
  stage's package when that stage runs, so a pipeline-only install never imports torch.
"""

__version__ = "0.1.0"
