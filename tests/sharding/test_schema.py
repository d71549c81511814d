"""Schema layout, names and structural validation."""

from __future__ import annotations

import numpy as np
import pytest

from sharding import schema
from sharding.vocab import load_vocab
from tests.sharding import builders


def test_nvidia_dtypes_and_keys():
    # NVIDIA's create_pretraining_data.py: i4 ids/positions, i1 mask/segments/labels.
    assert {k: v.str for k, v in schema.DTYPES.items()} == {
        "input_ids": "<i4",
        "input_mask": "|i1",
        "segment_ids": "|i1",
        "masked_lm_positions": "<i4",
        "masked_lm_ids": "<i4",
        "next_sentence_labels": "|i1",
    }
    assert "masked_lm_ids" not in schema.keys_for(masked=False)


def test_shard_names_follow_nvidia_rule():
    train, val = schema.shard_name("training", 3), schema.shard_name("validation", 0)
    assert train == "shard_training_00003.hdf5"
    assert "training" in train and "training" not in val
    assert schema.split_of(train) == "training" and schema.split_of(val) == "validation"
    assert schema.split_of("books_wiki_en_corpus_test_12.hdf5") == "validation"
    assert schema.split_of("latest.hdf5") is None and schema.split_of("training.txt") is None
    names = ["x_training_10.hdf5", "x_training_2.hdf5", "x_training_1.hdf5"]
    assert sorted(names, key=schema.natural_key) == [names[2], names[1], names[0]]
    with pytest.raises(ValueError):
        schema.shard_name("train", 0)


def test_validate_arrays_reports_the_bad_key():
    arrays = builders.pack(builders.build(4), 128, 20)
    meta = schema.validate_arrays(arrays)
    assert (meta.count, meta.seq_length, meta.max_predictions, meta.masked) == (4, 128, 20, True)
    bad = dict(arrays, input_ids=arrays["input_ids"].astype(np.int64))
    with pytest.raises(schema.SchemaError, match="input_ids: dtype int64"):
        schema.validate_arrays(bad)
    bad = dict(arrays, segment_ids=arrays["segment_ids"][:, :64])
    with pytest.raises(schema.SchemaError, match="segment_ids: shape"):
        schema.validate_arrays(bad)
    half = {k: v for k, v in arrays.items() if k != "masked_lm_ids"}
    with pytest.raises(schema.SchemaError, match="both present or both absent"):
        schema.validate_arrays(half)
    unmasked = {k: v for k, v in arrays.items() if k not in schema.MASK_KEYS}
    assert schema.validate_arrays(unmasked).masked is False


def test_empty_arrays_shapes():
    a = schema.empty_arrays(3, 512, 80)
    assert a["input_ids"].shape == (3, 512) and a["masked_lm_ids"].shape == (3, 80)
    assert a["next_sentence_labels"].shape == (3,) and not any(v.any() for v in a.values())


def test_real_vocab_specials_match_builder_constants():
    vocab = load_vocab(builders.VOCAB)
    assert vocab.size == builders.VOCAB_SIZE
    assert (vocab.pad, vocab.unk, vocab.cls, vocab.sep, vocab.mask) == (0, 100, 101, 102, 103)
    assert vocab.decode([101, 7592, 2088, 102]) == "[CLS] hello world [SEP]"


def test_sharding_imports_neither_torch_nor_beam():
    import sys

    from tests import proc

    code = (
        "import sys, sharding.cli, sharding.pack, sharding.verify;"
        "bad = [m for m in ('torch', 'apache_beam', 'pipeline', 'pretrain', 'tokenizers')"
        " if m in sys.modules]; print(bad)"
    )
    out = proc.run([sys.executable, "-c", code], cwd=builders.ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
