"""verify_dir finds each injected corruption and names the shard."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from sharding import schema
from sharding.reader import ShardReader
from sharding.verify import verify_dir
from sharding.writer import write_shard
from tests.sharding import builders

SHARD = "shard_training_00001.hdf5"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    directory, _ = builders.make_dir(tmp_path_factory.mktemp("pristine"), per_shard=30)
    return directory


@pytest.fixture
def work(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "d")


def _rewrite(directory, edit, name=SHARD):
    arrays = ShardReader(directory / name).read_all()
    edit(arrays)
    write_shard(directory / name, arrays)


def _messages(directory, name=SHARD):
    return [p.message for p in verify_dir(directory) if p.file == name]


def test_valid_dirs_have_no_problems(pristine, tmp_path):
    assert verify_dir(pristine) == []
    mlm_only, _ = builders.make_dir(tmp_path / "m", nsp=False, masked=False, per_shard=10)
    assert verify_dir(mlm_only) == []
    long, _ = builders.make_dir(tmp_path / "l", seq_length=512, max_pred=80, per_shard=10)
    assert verify_dir(long) == []


def _swap_first_positions(a):
    a["masked_lm_positions"][3, [0, 1]] = a["masked_lm_positions"][3, [1, 0]]
    a["masked_lm_ids"][3, [0, 1]] = a["masked_lm_ids"][3, [1, 0]]


def _segment_flip(a):
    a["segment_ids"][7, 1] = 1


def _id_too_large(a):
    a["input_ids"][2, 5] = 30522


def _mask_on_sep(a):
    length = int(a["input_mask"][4].sum())
    n = int(np.argmax(a["masked_lm_positions"][4] == 0))
    a["masked_lm_positions"][4, n] = length - 1
    a["masked_lm_ids"][4, n] = builders.SEP
    a["input_ids"][4, length - 1] = builders.MASK


def _hole_in_mask(a):
    a["input_mask"][6, 3] = 0


def _padding_id(a):
    row = int(np.argmin(a["input_mask"].sum(1)))  # a short instance: it has padding
    a["input_ids"][row, -1] = 2000
    return row


def _nsp_label(a):
    a["next_sentence_labels"][9] = 2


def _position_past_end(a):
    length = int(a["input_mask"][1].sum())
    n = int(np.argmax(a["masked_lm_positions"][1] == 0))
    a["masked_lm_positions"][1, n] = length + 2
    a["masked_lm_ids"][1, n] = 2000


@pytest.mark.parametrize(
    "edit, expected, exact",
    [
        (_swap_first_positions, "row 3: masked positions not strictly increasing", True),
        (_segment_flip, "row 7: segment_ids do not match the [SEP] layout", True),
        (_id_too_large, "row 2: ids outside [0, 30522)", True),
        (_mask_on_sep, "row 4: masked label is a special or bad id", True),
        # A hole in the mask shortens the instance: [SEP]/padding checks fire as well.
        (_hole_in_mask, "row 6: input_mask is not 1...1 0...0", False),
        (_padding_id, "row {row}: non-zero input_ids in padding", True),
        (_nsp_label, "row 9: bad next_sentence_labels", True),
        (_position_past_end, "row 1: masked position outside [1, length)", True),
    ],
)
def test_content_corruption_is_found(work, edit, expected, exact):
    rows = []
    _rewrite(work, lambda a: rows.append(edit(a)))
    expected = expected.format(row=rows[0])
    messages = _messages(work)
    assert expected in messages
    # The rewrite changed the bytes, so the checksum is flagged too; nothing else is.
    if exact:
        assert set(messages) == {
            expected,
            "sha256 does not match manifest.json (corrupt or replaced)",
        }
    assert all(p.file == SHARD for p in verify_dir(work))


def test_checksum_mismatch_alone(work):
    _rewrite(work, lambda a: a.update({k: v[::-1].copy() for k, v in a.items()}))
    assert _messages(work) == ["sha256 does not match manifest.json (corrupt or replaced)"]


def test_wrong_dtype(work):
    arrays = ShardReader(work / SHARD).read_all()
    with h5py.File(work / SHARD, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value.astype(np.int64) if key == "input_ids" else value)
    assert "input_ids has dtype int64, needs int32" in _messages(work)


def test_missing_shard_and_count_mismatch(work):
    (work / SHARD).unlink()
    m = json.loads((work / "manifest.json").read_text())
    m["shards"][0]["count"] = 31
    m["totals"]["training"] += 1
    (work / "manifest.json").write_text(json.dumps(m))
    problems = {str(p) for p in verify_dir(work)}
    assert f"{SHARD}: missing (listed in manifest.json)" in problems
    assert "shard_training_00000.hdf5: 30 instances, manifest.json says 31" in problems


def test_stray_shard_vocab_and_tokenizer(work):
    shutil.copyfile(work / SHARD, work / "shard_training_00009.hdf5")
    shutil.copyfile(builders.VOCAB.with_name("bert-base-cased-vocab.txt"), work / "vocab.txt")
    (work / "tokenizer.json").unlink()
    problems = {str(p) for p in verify_dir(work)}
    assert "shard_training_00009.hdf5: shard file not listed in manifest.json" in problems
    assert "vocab.txt: sha256 differs from manifest.json" in problems
    assert "vocab.txt: size differs from manifest.json" in problems
    assert "tokenizer.json: missing" in problems


def test_foreign_dir_mixed_lengths_and_no_vocab(tmp_path):
    for i, length in enumerate((128, 512)):
        arrays = builders.pack(builders.build(6, length, 20, seed=i), length, 20)
        with h5py.File(tmp_path / f"n_training_{i}.hdf5", "w") as f:
            for key in schema.ALL_KEYS:
                f.create_dataset(key, data=arrays[key])
    (tmp_path / "notes.h5").write_bytes(b"")
    problems = [str(p) for p in verify_dir(tmp_path)]
    assert "vocab.txt: missing: id checks need the vocab (--vocab)" in problems
    assert "notes.h5: ignored: the name has neither 'training' nor 'validation'/'test'" in problems
    assert any("mixed seq lengths" in p and "n_training_1.hdf5" in p for p in problems)
    (tmp_path / "n_training_1.hdf5").unlink()
    (tmp_path / "notes.h5").unlink()
    assert verify_dir(tmp_path, str(builders.VOCAB)) == []


def test_tokenizer_changed(work):
    text = (work / "tokenizer.json").read_text()
    (work / "tokenizer.json").write_text(text.replace('"lowercase": true', '"lowercase": false'))
    assert [str(p) for p in verify_dir(work)] == [
        "tokenizer.json: sha256 differs from manifest.json"
    ]


def test_truncated_shard_is_unreadable(work):
    data = (work / SHARD).read_bytes()
    (work / SHARD).write_bytes(data[: len(data) // 2])
    messages = _messages(work)
    assert messages[0] == "sha256 does not match manifest.json (corrupt or replaced)"
    assert len(messages) == 2 and messages[1].startswith("unreadable or not in the schema")


def test_damaged_chunk_is_reported_not_raised(work):
    data = bytearray((work / SHARD).read_bytes())
    middle = len(data) // 2  # inside the compressed data, past the metadata
    data[middle : middle + 64] = bytes(64)
    (work / SHARD).write_bytes(bytes(data))
    messages = _messages(work)
    assert messages[0] == "sha256 does not match manifest.json (corrupt or replaced)"
    assert len(messages) == 2 and "unreadable" in messages[1], messages
