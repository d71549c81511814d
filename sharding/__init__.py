"""The shard contract between the pipeline and the runner: HDF5 in NVIDIA's BERT schema.

h5py + numpy only: never imports Beam or torch.

Modules:
    schema    dataset names, dtypes, shapes, file attributes, shard file names
    pack      variable-length instances -> padded schema arrays
    writer    write_shard: gzip HDF5, atomic, deterministic bytes
    manifest  manifest.json: build, write atomically, load and validate
    reader    ShardReader (one file), ShardSet (a directory), decode_instance
    vocab     vocab.txt: special ids and decoding
    verify    every problem of a shard directory, naming the file
    inspect   statistics and decoded examples
    cli       ``bertprep shards verify|inspect DIR``
"""
