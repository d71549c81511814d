"""ShardReader / ShardSet / decode_instance."""

from __future__ import annotations

import multiprocessing
import pickle
import shutil

import h5py
import numpy as np
import pytest

from ground.errors import UserError
from sharding import schema
from sharding.reader import ShardReader, ShardSet, decode_instance, num_masked
from sharding.writer import write_shard
from tests.sharding import builders


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    directory, recs = builders.make_dir(tmp_path_factory.mktemp("shards"), per_shard=35)
    return directory, recs


def test_shard_set_from_manifest(shard_dir):
    directory, recs = shard_dir
    shards = ShardSet.open(directory)
    assert [r.path.name for r in shards.training] == [
        f"shard_training_{i:05d}.hdf5" for i in range(3)
    ]
    assert [r.path.name for r in shards.validation] == ["shard_validation_00000.hdf5"]
    assert (shards.seq_length, shards.max_predictions, shards.masked, shards.nsp) == (
        128,
        20,
        True,
        True,
    )
    assert shards.vocab_size == 30522 and shards.counts() == [35, 35, 35]
    assert shards.manifest["seed"] == 0


def test_decode_100_instances_back_to_builder_records(shard_dir):
    directory, recs = shard_dir
    shards = ShardSet.open(directory)
    decoded, expected = [], []
    for reader, shard_recs in zip(shards.training, recs):
        arrays = reader.read_all()
        decoded += [decode_instance(arrays, i) for i in range(len(reader))]
        expected += shard_recs
    assert len(decoded) >= 100
    for got, rec in zip(decoded[:105], expected):
        assert got.input_ids.tolist() == rec.input_ids
        assert got.segment_ids.tolist() == rec.segment_ids
        assert got.masked_positions.tolist() == rec.masked_positions
        assert got.masked_labels.tolist() == rec.masked_labels
        assert got.next_sentence_label == rec.next_sentence_label
        # The original text comes back: labels restored at the masked positions.
        original = list(rec.input_ids)
        for p, lab in zip(rec.masked_positions, rec.masked_labels):
            original[p] = lab
        assert got.original_ids.tolist() == original
        assert builders.MASK not in got.original_ids.tolist()


def test_nvidia_first_zero_rule():
    assert num_masked(np.array([3, 7, 9, 0, 0])) == 3
    assert num_masked(np.array([3, 7, 9])) == 3
    assert num_masked(np.array([0, 0])) == 0


def test_foreign_nvidia_dir_without_manifest(tmp_path):
    # NVIDIA naming: *_training_N.hdf5 and *_test_N.hdf5, written by plain h5py without attrs.
    recs = builders.build(30, seed=5)
    arrays = builders.pack(recs, 128, 20)
    for name in [
        "books_wiki_en_corpus_training_10.hdf5",
        "books_wiki_en_corpus_training_2.hdf5",
        "books_wiki_en_corpus_test_0.hdf5",
    ]:
        with h5py.File(tmp_path / name, "w") as f:
            for key in schema.ALL_KEYS:
                f.create_dataset(
                    key, data=arrays[key], dtype=schema.DTYPES[key], compression="gzip"
                )
    (tmp_path / "other.hdf5").write_bytes(b"")
    shards = ShardSet.open(tmp_path)
    assert shards.manifest is None and shards.vocab_size is None and shards.nsp is None
    assert [r.path.name for r in shards.training] == [
        "books_wiki_en_corpus_training_2.hdf5",
        "books_wiki_en_corpus_training_10.hdf5",
    ]
    assert [r.path.name for r in shards.validation] == ["books_wiki_en_corpus_test_0.hdf5"]
    assert shards.ignored == ["other.hdf5"]
    assert decode_instance(shards.training[0].read_all(), 4).masked_labels.tolist() == (
        recs[4].masked_labels
    )
    shutil.copyfile(builders.VOCAB, tmp_path / "vocab.txt")
    assert ShardSet.open(tmp_path).vocab_size == 30522


def test_missing_shard_is_named(tmp_path):
    directory, _ = builders.make_dir(tmp_path / "d", train_shards=2, val_shards=0, per_shard=5)
    (directory / "shard_training_00001.hdf5").unlink()
    with pytest.raises(UserError, match="shard shard_training_00001.hdf5 is listed in .* missing"):
        ShardSet.open(directory)
    with pytest.raises(UserError, match="missing"):
        len(ShardReader(directory / "shard_training_00001.hdf5"))


def test_mixed_seq_lengths_are_refused(tmp_path):
    for i, length in enumerate((128, 512)):
        recs = builders.build(5, length, 20, seed=i)
        write_shard(tmp_path / f"x_training_{i}.hdf5", builders.pack(recs, length, 20))
    with pytest.raises(UserError, match="mixed seq lengths.*128 \\(x_training_0.hdf5\\).*512"):
        ShardSet.open(tmp_path)


def test_empty_or_absent_dir(tmp_path):
    with pytest.raises(UserError, match="no shards"):
        ShardSet.open(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        ShardSet.open(tmp_path / "nope")


def _child_sum(reader):
    return int(reader.read_all()["input_ids"].astype(np.int64).sum())


def test_reader_is_pickle_and_fork_safe(shard_dir):
    directory, _ = shard_dir
    reader = ShardReader(directory / "shard_training_00000.hdf5")
    expected = _child_sum(reader)  # the parent has used (and closed) the file before forking
    clone = pickle.loads(pickle.dumps(reader))
    assert _child_sum(clone) == expected
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        assert pool.map(_child_sum, [reader, reader]) == [expected, expected]
    finally:
        pool.close()  # workers exit on their own (terminate's SIGTERM can be caught)
        pool.join()
    rows = reader.read_rows(5, 9)
    np.testing.assert_array_equal(rows["input_ids"], reader.read_all()["input_ids"][5:9])
    only = reader.read_all(("input_mask",))
    assert list(only) == ["input_mask"] and only["input_mask"].shape == (35, 128)
    with pytest.raises(schema.SchemaError, match="no dataset 'lengths'"):
        reader.read_all(("lengths",))


def test_nvidia_getitem_logic_recovers_labels(shard_dir):
    # NVIDIA's pretraining_dataset.__getitem__, in numpy: labels -1 everywhere except
    # masked_lm_positions[:index] with index = first 0 in the positions (else max_pred).
    directory, recs = shard_dir
    path = directory / "shard_training_00002.hdf5"
    with h5py.File(path, "r") as f:
        inputs = [np.asarray(f[k][:]) for k in schema.ALL_KEYS]
    for i, rec in enumerate(recs[2]):
        ids, mask, seg, pos, mids, nsp = [x[i].astype(np.int64) for x in inputs]
        labels = np.full(ids.shape, -1)
        padded = np.flatnonzero(pos == 0)
        index = padded[0] if padded.size else 20
        labels[pos[:index]] = mids[:index]
        want = np.full(128, -1)
        want[rec.masked_positions] = rec.masked_labels
        np.testing.assert_array_equal(labels, want)
        assert int(mask.sum()) == len(rec.input_ids) and int(nsp) == rec.next_sentence_label
