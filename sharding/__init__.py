"""The shard contract between the pipeline and the runner: HDF5 in NVIDIA's BERT schema.

h5py + numpy only: never imports Beam or torch.
"""
