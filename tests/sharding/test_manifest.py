"""manifest.json: round trip, canonical bytes, validation, world-size warning."""

from __future__ import annotations

import json

import pytest

from ground.errors import UserError
from sharding import manifest as mf
from sharding.writer import ShardFile, file_sha256
from tests.sharding import builders


def _manifest(**over):
    shards = [
        ("validation", ShardFile("shard_validation_00000.hdf5", 5, "c" * 64, 10)),
        ("training", ShardFile("shard_training_00010.hdf5", 7, "b" * 64, 10)),
        ("training", ShardFile("shard_training_00002.hdf5", 8, "a" * 64, 10)),
    ]
    args = dict(
        seq_length=128,
        max_predictions=20,
        masked=True,
        nsp=True,
        shards=shards,
        vocab={"file": "vocab.txt", "sha256": "d" * 64, "size": 30522},
        seed=7,
        config={"dupe_factor": 5, "masked_lm_prob": 0.15},
        report={"skipped": {"too_long": 2}},
    )
    args.update(over)
    return mf.build_manifest(**args)


def test_round_trip_and_order(tmp_path):
    m = _manifest()
    assert [e["file"] for e in m["shards"]] == [
        "shard_training_00002.hdf5",
        "shard_training_00010.hdf5",
        "shard_validation_00000.hdf5",
    ]
    assert m["totals"] == {"training": 15, "validation": 5}
    path = mf.write_manifest(tmp_path, m)
    assert mf.load_manifest(tmp_path) == m
    text = path.read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
    # Same content built in another order -> same bytes.
    shuffled = _manifest(
        shards=[
            ("training", ShardFile("shard_training_00002.hdf5", 8, "a" * 64, 10)),
            ("validation", ShardFile("shard_validation_00000.hdf5", 5, "c" * 64, 10)),
            ("training", ShardFile("shard_training_00010.hdf5", 7, "b" * 64, 10)),
        ]
    )
    assert mf.dumps(shuffled) == text
    entries = mf.entries(m, "training")
    assert [(e.file, e.count) for e in entries] == [
        ("shard_training_00002.hdf5", 8),
        ("shard_training_00010.hdf5", 7),
    ]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("seq_length"), "'seq_length' is missing"),
        (lambda m: m.update(schema_version=99), "schema version 99"),
        (lambda m: m["totals"].update(training=16), "totals\\['training'\\] = 16"),
        (lambda m: m["shards"][0].update(split="dev"), "unknown split 'dev'"),
        (lambda m: m["shards"][1].update(file=m["shards"][0]["file"]), "repeated shard file"),
        (lambda m: m.update(masked="yes"), "'masked' must be bool"),
    ],
)
def test_invalid_manifests_are_refused(tmp_path, edit, message):
    m = _manifest()
    edit(m)
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match=message):
        mf.load_manifest(tmp_path)


def test_not_json_and_absent(tmp_path):
    assert mf.load_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        mf.load_manifest(tmp_path)


def test_vocab_info_of_real_vocab():
    info = mf.vocab_info(builders.VOCAB)
    lines = builders.VOCAB.read_text(encoding="utf-8").splitlines()
    assert info == {
        "file": builders.VOCAB.name,
        "sha256": file_sha256(builders.VOCAB),
        "size": len(lines),
    }
    assert info["size"] == 30522


def test_world_size_warning():
    assert mf.world_size_warning(8, None) is None
    assert mf.world_size_warning(8, 8) is None
    warning = mf.world_size_warning(4, 8)
    assert "only 4 training shards" in warning and "--num-shards >= 8" in warning


def test_config_differences():
    a = _manifest()
    assert mf.config_differences(a, _manifest()) == []
    b = _manifest(seq_length=512, seed=8, vocab={"file": "vocab.txt", "sha256": "e" * 64})
    assert mf.config_differences(a, b) == ["seq_length", "seed", "vocab"]
    c = _manifest(config={"dupe_factor": 10, "masked_lm_prob": 0.15})
    assert mf.config_differences(a, c) == ["config"]
