"""``bertprep shards verify|inspect``: exit codes and output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bertprep.cli import main
from sharding.reader import ShardReader
from sharding.writer import write_shard
from tests.sharding import builders


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return builders.make_dir(tmp_path_factory.mktemp("cli"), per_shard=50, val_shards=1)


def test_verify_ok_and_world_size_warning(built, capsys):
    directory, _ = built
    assert main(["shards", "verify", str(directory)]) == 0
    out = capsys.readouterr()
    assert "OK (3 training + 1 validation shards, 200 instances, seq length 128)" in out.out
    assert main(["shards", "verify", str(directory), "--world-size", "8"]) == 0
    assert "only 3 training shards for a world size of 8" in capsys.readouterr().err


def test_verify_fails_naming_shard(built, tmp_path, capsys):
    import shutil

    work = shutil.copytree(built[0], tmp_path / "w")
    arrays = ShardReader(work / "shard_training_00002.hdf5").read_all()
    arrays["segment_ids"][11, 2] = 1
    write_shard(work / "shard_training_00002.hdf5", arrays)
    assert main(["shards", "verify", str(work)]) == 1
    err = capsys.readouterr().err
    assert "shard_training_00002.hdf5: row 11: segment_ids do not match the [SEP] layout" in err
    assert "2 problem(s)" in err


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["shards", "verify", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["shards", "inspect", str(tmp_path)]) == 2
    assert "no shards" in capsys.readouterr().err


def test_inspect_json_matches_independent_counts(built, capsys):
    directory, recs = built
    assert main(["shards", "inspect", str(directory), "--json", "--examples", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    train = [r for shard in recs[:3] for r in shard]
    t = summary["training"]
    assert t["instances"] == 150 and t["counts_per_shard"] == [50, 50, 50]
    assert t["nsp_random_fraction"] == pytest.approx(
        np.mean([r.next_sentence_label for r in train])
    )
    assert t["mean_length"] == pytest.approx(np.mean([len(r.input_ids) for r in train]))
    assert t["mean_masked"] == pytest.approx(np.mean([len(r.masked_positions) for r in train]))
    stored = [r.input_ids[p] for r in train for p in r.masked_positions]
    labels = [lab for r in train for lab in r.masked_labels]
    mask_frac = np.mean([s == builders.MASK for s in stored])
    same_frac = np.mean([s == lab for s, lab in zip(stored, labels)])
    assert t["mask_split"]["mask"] == pytest.approx(mask_frac)
    assert t["mask_split"]["unchanged"] == pytest.approx(same_frac)
    assert 0.75 < t["mask_split"]["mask"] < 0.85
    # Independent binning: 8-token bars from 1 (128 / 16) and 2-wide masked counts (21 / 16).
    from collections import Counter

    lengths = Counter(
        f"{(len(r.input_ids) - 1) // 8 * 8 + 1}-{(len(r.input_ids) - 1) // 8 * 8 + 8}"
        for r in train
    )
    assert t["length_histogram"] == dict(lengths)
    assert "121-128" in t["length_histogram"]
    counts = Counter(
        f"{len(r.masked_positions) // 2 * 2}-{len(r.masked_positions) // 2 * 2 + 1}" for r in train
    )
    assert t["masked_count_histogram"] == dict(counts)
    assert summary["validation"]["instances"] == 50
    first = recs[0][0]
    original = list(first.input_ids)
    for p, lab in zip(first.masked_positions, first.masked_labels):
        original[p] = lab
    assert summary["examples"][0].endswith(f"next_sentence_label={first.next_sentence_label}")
    from sharding.vocab import load_vocab

    assert summary["examples"][2] == "original: " + load_vocab(builders.VOCAB).decode(original)


def test_inspect_text(built, capsys):
    assert main(["shards", "inspect", str(built[0]), "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "training: 3 shards, 150 instances (50..50 per shard)" in out
    assert "masking: [MASK]" in out and "row 0: next_sentence_label=" in out


def test_inspect_unmasked_mlm_only(tmp_path, capsys):
    directory, recs = builders.make_dir(tmp_path / "u", masked=False, nsp=False, per_shard=8)
    assert main(["shards", "inspect", str(directory), "--json", "--examples", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["masked"], summary["nsp"], summary["max_predictions"]) == (False, False, 0)
    assert "mean_masked" not in summary["training"]
    assert summary["training"]["nsp_random_fraction"] == 0.0
    assert summary["examples"][1].startswith("stored:   [CLS] ") and len(summary["examples"]) == 2
    assert main(["shards", "verify", str(directory)]) == 0


def _flip_middle(path, n=64):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + n] = bytes(b ^ 0xFF for b in data[mid : mid + n])
    path.write_bytes(bytes(data))


def test_inspect_of_a_corrupt_shard_is_one_line(built, tmp_path, capsys):
    import shutil

    work = shutil.copytree(built[0], tmp_path / "w")
    _flip_middle(work / "shard_training_00001.hdf5")
    assert main(["shards", "inspect", str(work)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shard_training_00001.hdf5" in err[0], err
    assert "Traceback" not in "\n".join(err)
