"""write_shard: round trip, deterministic bytes, atomicity, storage layout."""

from __future__ import annotations

import os
import time

import h5py
import numpy as np
import pytest

from sharding import schema, writer
from sharding.pack import pack_instances
from sharding.reader import ShardReader
from tests.sharding import builders


@pytest.fixture(scope="module")
def arrays():
    return builders.pack(builders.build(300, seed=1), 128, 20)


def test_round_trip_exact_dtypes(tmp_path, arrays):
    info = writer.write_shard(tmp_path / "shard_training_00000.hdf5", arrays)
    assert info.count == 300 and info.bytes == os.path.getsize(tmp_path / info.name)
    back = ShardReader(tmp_path / info.name).read_all()
    assert set(back) == set(arrays)
    for key, value in arrays.items():
        assert back[key].dtype == value.dtype == schema.DTYPES[key]
        np.testing.assert_array_equal(back[key], value)


def test_plain_h5py_reads_like_nvidia(tmp_path, arrays):
    # NVIDIA's loader: h5py.File(path, "r"), np.asarray(f[key][:]) for the six keys.
    info = writer.write_shard(tmp_path / "s_training_0.hdf5", arrays)
    with h5py.File(tmp_path / info.name, "r") as f:
        got = [np.asarray(f[k][:]) for k in schema.ALL_KEYS]
        assert f.attrs["seq_length"] == 128 and f.attrs["max_predictions"] == 20
        assert bool(f.attrs["masked"]) and f["input_ids"].compression == "gzip"
        assert f["input_ids"].compression_opts == writer.DEFAULT_GZIP_LEVEL
        # One chunk holds many rows (whole-shard reads) and never more than the shard.
        assert 1 < f["input_ids"].chunks[0] <= 300 and f["input_ids"].chunks[1] == 128
    for key, value in zip(schema.ALL_KEYS, got):
        np.testing.assert_array_equal(value, arrays[key])


def test_same_arrays_give_identical_bytes(tmp_path, arrays):
    a = writer.write_shard(tmp_path / "a.hdf5", arrays)
    time.sleep(1.1)  # HDF5 object timestamps have 1 s resolution: they must not be stored
    b = writer.write_shard(tmp_path / "b.hdf5", dict(arrays))
    assert (tmp_path / "a.hdf5").read_bytes() == (tmp_path / "b.hdf5").read_bytes()
    assert a.sha256 == b.sha256 == writer.file_sha256(tmp_path / "b.hdf5")
    other = dict(arrays, next_sentence_labels=1 - arrays["next_sentence_labels"])
    assert writer.write_shard(tmp_path / "c.hdf5", other).sha256 != a.sha256


def test_failed_write_leaves_no_partial_file(tmp_path, arrays, monkeypatch):
    target = tmp_path / "shard_training_00000.hdf5"
    old = writer.write_shard(target, arrays)
    real = h5py.Group.create_dataset
    calls = []

    def failing(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("disk full (injected)")
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="injected"):
        writer.write_shard(
            target, dict(arrays, next_sentence_labels=arrays["next_sentence_labels"] * 0)
        )
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [target.name]  # no temp file left behind
    assert writer.file_sha256(target) == old.sha256  # the previous shard is untouched
    assert calls[:3] == ["input_ids", "input_mask", "segment_ids"]


def test_unmasked_variant_has_no_masked_datasets(tmp_path):
    recs = builders.build(20, masked=False, nsp=False)
    arrays = pack_instances(recs, 128, 20, masked=False)
    info = writer.write_shard(tmp_path / "u_training_0.hdf5", arrays, nsp=False)
    with h5py.File(tmp_path / info.name, "r") as f:
        assert sorted(f.keys()) == [
            "input_ids",
            "input_mask",
            "next_sentence_labels",
            "segment_ids",
        ]
        assert not f.attrs["masked"] and not f.attrs["nsp"] and f.attrs["max_predictions"] == 0
    meta = ShardReader(tmp_path / info.name).meta
    assert (meta.masked, meta.nsp, meta.max_predictions) == (False, False, 0)


def test_refuses_bad_input(tmp_path, arrays):
    with pytest.raises(schema.SchemaError):
        writer.write_shard(tmp_path / "x.hdf5", {k: v[:0] for k, v in arrays.items()})
    with pytest.raises(schema.SchemaError, match="dtype"):
        writer.write_shard(tmp_path / "x.hdf5", dict(arrays, input_mask=arrays["input_mask"] * 1.0))
    assert list(tmp_path.iterdir()) == []


def test_pack_instances_matches_independent_packer():
    recs = builders.build(50, 512, 80, seed=3)
    ours, theirs = pack_instances(recs, 512, 80), builders.pack(recs, 512, 80)
    for key in theirs:
        assert ours[key].dtype == theirs[key].dtype
        np.testing.assert_array_equal(ours[key], theirs[key])
    with pytest.raises(schema.SchemaError, match="seq length 64"):
        pack_instances(recs, 64, 80)


def test_pack_accepts_tuples_and_pipeline_field_names():
    from types import SimpleNamespace

    recs = builders.build(6, seed=4)
    tuples = [
        (r.input_ids, r.segment_ids, r.masked_positions, r.masked_labels, r.next_sentence_label)
        for r in recs
    ]
    pipeline_style = [
        SimpleNamespace(
            tokens=np.array(r.input_ids, np.int32),
            segment_ids=np.array(r.segment_ids, np.int8),
            masked_lm_positions=np.array(r.masked_positions, np.int32),
            masked_lm_ids=np.array(r.masked_labels, np.int32),
            is_random_next=bool(r.next_sentence_label),
        )
        for r in recs
    ]
    expected = builders.pack(recs, 128, 20)
    for packed in (pack_instances(tuples, 128, 20), pack_instances(pipeline_style, 128, 20)):
        for key in expected:
            np.testing.assert_array_equal(packed[key], expected[key])
