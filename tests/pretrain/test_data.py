"""pretrain.data / binning / masking on real shards built from the bundled books by the CLI."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from bertprep.cli import main as cli_main
from ground.errors import UserError
from pretrain import binning, collate
from pretrain.data import (
    VALIDATION_ID_BASE,
    PretrainLoader,
    ValidationLoader,
    check_compatible,
)
from sharding.reader import ShardSet
from sharding.vocab import load_vocab

BOOKS = ("11-0.txt", "1661.txt")
KEYS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "masked_lm_positions",
    "masked_lm_labels",
    "next_sentence_label",
    "sample_ids",
)


def _build(tmp: Path, books: Path, name: str, *extra: str) -> Path:
    run = tmp / name
    common = ["--vocab-size", "3000", "--dupe-factor", "1", "--num-shards", "4"]
    argv = ["build", "--books", str(books), "--output", str(run), *common]
    assert cli_main([*argv, "--group-tokens", "20000", *extra]) == 0
    return run


@pytest.fixture(scope="session")
def runs(tmp_path_factory, corpus_dir) -> dict[str, Path]:
    """Masked seq128 + seq512 (short-seq 0.5 for varied lengths, 2 validation shards) and an
    unmasked seq128 build, each with 4 training shards."""
    tmp = tmp_path_factory.mktemp("data")
    books = tmp / "books"
    books.mkdir()
    for b in BOOKS:
        shutil.copy(corpus_dir / "books" / b, books / b)
    masked = _build(
        tmp, books, "masked", "--validation-fraction", "0.2", "--num-validation-shards", "2",
        "--short-seq-prob", "0.5",
    )  # fmt: skip
    unmasked = _build(tmp, books, "unmasked", "--unmasked", "--max-seq-length", "128")
    return {
        "m128": masked / "seq128",
        "m512": masked / "seq512",
        "u128": unmasked / "seq128",
    }


def _take(loader, n):
    return list(itertools.islice(iter(loader), n))


def _ids(batches) -> list[int]:
    return [i for b in batches for i in b["sample_ids"].tolist()]


def _raw_rows(directory: Path) -> dict[int, dict[str, np.ndarray]]:
    """sample id -> row arrays read straight with h5py (independent of sharding.reader)."""
    out = {}
    names = sorted(p.name for p in directory.glob("shard_training_*.hdf5"))
    for s, name in enumerate(names):
        with h5py.File(directory / name, "r") as f:
            data = {k: f[k][:] for k in f.keys()}
        for row in range(len(data["input_ids"])):
            out[(s << 32) + row] = {k: v[row] for k, v in data.items()}
    return out


# ---- rank split -------------------------------------------------------------------------
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_disjoint_equal_and_union_is_single_process(runs, world_size):
    shards = ShardSet.open(runs["m128"])
    b = 4
    loaders = [
        PretrainLoader(shards, b, seed=7, world_size=world_size, rank=r, prefetch=False)
        for r in range(world_size)
    ]
    n = loaders[0].batches_per_epoch()
    step = world_size * b
    assert n == sum(c // step for c in shards.counts())  # independent count from metadata
    per_rank = [_take(ld, n) for ld in loaders]
    assert all(ld.batches_per_epoch() == n for ld in loaders)
    assert all(ld.state_dict()["epoch"] == 0 for ld in loaders)  # exactly one epoch consumed
    sets = [set(_ids(x)) for x in per_rank]
    assert sum(len(s) for s in sets) == len(set().union(*sets))  # disjoint
    assert all(len(s) == n * b for s in sets)  # no repeats within a rank
    # One process with micro batch W*B: its step j = the union of the ranks' step j.
    single = _take(PretrainLoader(shards, step, seed=7, prefetch=False), n)
    for j in range(n):
        union = set().union(*(set(x[j]["sample_ids"].tolist()) for x in per_rank))
        assert union == set(single[j]["sample_ids"].tolist())
    # Per shard, what is dropped is less than one global batch.
    used = np.bincount(np.array(sorted(set().union(*sets))) >> 32, minlength=4)
    assert all(0 <= c - u < step and u % step == 0 for c, u in zip(shards.counts(), used))


@pytest.mark.parametrize("bin_size", [None, 32])
def test_global_batch_union_matches_across_world_sizes(runs, bin_size):
    # Same global batch (12) with 1 process x micro 6 x accum 2 and 2 ranks x micro 3 x accum 2.
    shards = ShardSet.open(runs["m128"])
    kw = dict(seed=3, global_batch=12, bin_size=bin_size)
    one = PretrainLoader(shards, 6, prefetch=False, **kw)
    n = one.batches_per_epoch()
    assert n % 2 == 0 and n > 20
    one = _take(one, n)
    two = [_take(PretrainLoader(shards, 3, world_size=2, rank=r, **kw), n) for r in range(2)]
    for g in range(n // 2):
        a = set(_ids(one[2 * g : 2 * g + 2]))
        b = set(_ids(two[0][2 * g : 2 * g + 2])) | set(_ids(two[1][2 * g : 2 * g + 2]))
        assert a == b and len(a) == 12


def test_epochs_reshuffle_shards_and_rows(runs):
    loader = PretrainLoader(runs["m128"], 8, seed=1, prefetch=False)
    n = loader.batches_per_epoch()
    batches = _take(loader, 2 * n)
    e0, e1 = _ids(batches[:n]), _ids(batches[n:])
    assert e0 != e1 and len(set(e0)) == len(e0) and len(set(e1)) == len(e1)
    other = _ids(_take(PretrainLoader(runs["m128"], 8, seed=2, prefetch=False), n))
    assert other != e0


# ---- content ----------------------------------------------------------------------------
def test_batches_match_shard_data(runs):
    raw = _raw_rows(runs["m128"])
    for batch in _take(PretrainLoader(runs["m128"], 16, seed=5, pad_to_longest=True), 10):
        width = batch["input_ids"].shape[1]
        for i, sid in enumerate(batch["sample_ids"].tolist()):
            r = raw[sid]
            n = int(r["input_mask"].sum())
            assert width % 8 == 0 and n <= width and not r["input_mask"][width:].any()
            assert batch["input_ids"][i].tolist() == r["input_ids"][:width].tolist()
            assert batch["attention_mask"][i].tolist() == r["input_mask"][:width].tolist()
            assert batch["token_type_ids"][i].tolist() == r["segment_ids"][:width].tolist()
            assert batch["next_sentence_label"][i].item() == int(r["next_sentence_labels"])
            pos = r["masked_lm_positions"].tolist()
            k = pos.index(0) if 0 in pos else len(pos)  # NVIDIA: first 0 ends the list
            assert k > 0
            assert batch["masked_lm_positions"][i].tolist() == pos[:k] + [0] * (len(pos) - k)
            labels = r["masked_lm_ids"].tolist()[:k] + [-100] * (len(pos) - k)
            assert batch["masked_lm_labels"][i].tolist() == labels
        labelled = int((batch["masked_lm_labels"] != -100).sum())  # what the trainer counts
        assert labelled == int((batch["masked_lm_positions"] > 0).sum())
        for key in KEYS:
            assert batch[key].dtype == torch.int64


# ---- exact resume -----------------------------------------------------------------------
def _check_resume(directory, cuts, **kw):
    ref_loader = PretrainLoader(directory, **kw)
    per_epoch = ref_loader.batches_per_epoch()
    total = max(cuts) + per_epoch + 3
    ref = _take(ref_loader, total)
    flipped = _take(PretrainLoader(directory, **{**kw, "prefetch": not kw["prefetch"]}), total)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(flipped, ref, strict=True) for k in KEYS)
    for k in cuts:
        first = PretrainLoader(directory, **kw)
        head = _take(first, k)
        state = json.loads(json.dumps(first.state_dict()))  # plain types only
        first.close()
        fresh = PretrainLoader(directory, **kw)
        fresh.load_state_dict(state)
        tail = _take(fresh, total - k)
        fresh.close()
        for a, b in zip(head + tail, ref, strict=True):
            for key in KEYS:
                assert torch.equal(a[key], b[key]), (k, key)
    return per_epoch


@pytest.mark.parametrize(
    "name,kw",
    [
        ("m128", dict(micro_batch=8, prefetch=True)),
        ("m128", dict(micro_batch=4, world_size=2, rank=1, bin_size=32, prefetch=False)),
        ("u128", dict(micro_batch=32, seed=9, pad_to_longest=True, prefetch=True)),
    ],
)
def test_exact_resume_across_shard_and_epoch_boundaries(runs, name, kw):
    loader = PretrainLoader(runs[name], **kw)
    per_epoch = loader.batches_per_epoch()
    first_shard = len(
        loader._plan(0, int(binning.shard_order(loader.seed, 0, len(loader.readers))[0]))[0]
    )
    cuts = [1, first_shard, first_shard + 1, per_epoch - 1, per_epoch, per_epoch + 2]
    assert _check_resume(runs[name], cuts, **kw) == per_epoch


def test_state_survives_torch_save_and_rejects_other_settings(runs, tmp_path):
    loader = PretrainLoader(runs["m128"], 8, seed=4)
    _take(loader, 5)
    torch.save({"sampler": loader.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)["sampler"]
    assert state == loader.state_dict() and state["offset"] + state["shard_pos"] > 0
    for other in (
        PretrainLoader(runs["m128"], 8, seed=5),
        PretrainLoader(runs["m128"], 4, seed=4),
        PretrainLoader(runs["m128"], 4, seed=4, world_size=2),
        PretrainLoader(runs["m128"], 8, seed=4, bin_size=32),
        PretrainLoader(runs["m512"], 8, seed=4),
    ):
        with pytest.raises(UserError, match="settings changed"):
            other.load_state_dict(state)
    with pytest.raises(UserError, match="version"):
        loader.load_state_dict({"epoch": 0})


# ---- dynamic masking --------------------------------------------------------------------
def test_dynamic_masking_properties(runs):
    directory = runs["u128"]
    vocab = load_vocab(directory / "vocab.txt")
    raw = _raw_rows(directory)
    loader = PretrainLoader(directory, 64, seed=11)
    batches = _take(loader, loader.batches_per_epoch())
    specials = {vocab.cls, vocab.sep, vocab.pad}
    kinds = {"mask": 0, "random": 0, "same": 0}
    for batch in batches:
        for i, sid in enumerate(batch["sample_ids"].tolist()):
            orig = raw[sid]["input_ids"].astype(np.int64)
            n = int(raw[sid]["input_mask"].sum())
            pos = batch["masked_lm_positions"][i].tolist()
            lab = batch["masked_lm_labels"][i].tolist()
            k = sum(1 for x in lab if x != -100)
            assert k == min(20, max(1, int(round(n * 0.15))))
            assert pos[k:] == [0] * (20 - k) and lab[k:] == [-100] * (20 - k)
            p = pos[:k]
            assert p == sorted(set(p)) and all(0 < x < n for x in p)
            assert all(int(orig[x]) not in specials for x in p)
            assert lab[:k] == [int(orig[x]) for x in p]
            got = batch["input_ids"][i].numpy()
            untouched = np.setdiff1d(np.arange(len(orig)), p)
            assert np.array_equal(got[untouched], orig[untouched])
            for x in p:
                tok = int(got[x])
                if tok == vocab.mask:
                    kinds["mask"] += 1
                elif tok == orig[x]:
                    kinds["same"] += 1
                else:
                    kinds["random"] += 1
                    assert tok not in vocab.special_ids and 0 < tok < vocab.size
    total = sum(kinds.values())
    assert total > 20000
    # Binomial sd at p=0.1 over 20k draws is 0.002; a same-id random draw adds ~1/3000.
    assert abs(kinds["mask"] / total - 0.8) < 0.012
    assert abs(kinds["random"] / total - 0.1) < 0.01
    assert abs(kinds["same"] / total - 0.1) < 0.01


def test_masks_depend_only_on_seed_epoch_sample(runs):
    directory = runs["u128"]

    def masks(loader, n):
        out = {}
        for b in _take(loader, n):
            for i, sid in enumerate(b["sample_ids"].tolist()):
                out[sid] = (b["masked_lm_positions"][i].tolist(), b["input_ids"][i].tolist())
        return out

    base = PretrainLoader(directory, 64, seed=3)
    n = base.batches_per_epoch()
    one = masks(base, n)
    # Other ranks, batch sizes and padding: identical masks per sample id.
    for r in range(2):
        other = masks(PretrainLoader(directory, 8, seed=3, world_size=2, rank=r), 30)
        assert other and all(one[s][0] == v[0] for s, v in other.items() if s in one)
    trimmed = masks(PretrainLoader(directory, 16, seed=3, pad_to_longest=True), 20)
    assert all(one[s][1][: len(v[1])] == v[1] for s, v in trimmed.items() if s in one)
    # Next epoch (same loader) and another seed: different masks for nearly every sample.
    epoch1 = masks(base, n)
    same = sum(one[s][0] == epoch1[s][0] for s in epoch1 if s in one)
    assert len(epoch1) > 1000 and same < 0.02 * len(epoch1)
    seed4 = masks(PretrainLoader(directory, 64, seed=4), n)
    assert sum(one[s][0] == seed4[s][0] for s in seed4 if s in one) < 0.02 * len(seed4)


def test_replacement_ids_exclude_specials_and_unused(corpus_dir):
    path = corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"
    tokens = path.read_text(encoding="utf-8").splitlines()
    ids = collate.replacement_ids(load_vocab(path))
    unused = sum(1 for t in tokens if re.fullmatch(r"\[unused\d+\]", t))
    assert unused > 900 and len(ids) == len(tokens) - unused - 5
    kept = {tokens[i] for i in ids.tolist()}
    assert not kept & {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    assert not any(t.startswith("[unused") for t in kept) and "the" in kept


def test_static_labels_first_zero_ends_list():
    pos = np.array([[3, 5, 0, 7], [0, 2, 4, 0], [1, 2, 3, 4]])
    ids = np.array([[10, 11, 12, 13], [20, 21, 22, 23], [30, 31, 32, 33]])
    p, lab = collate.static_labels(pos, ids)
    assert p.tolist() == [[3, 5, 0, 0], [0, 0, 0, 0], [1, 2, 3, 4]]
    assert lab.tolist() == [[10, 11, -100, -100], [-100] * 4, [30, 31, 32, 33]]


# ---- length binning ---------------------------------------------------------------------
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_binning(runs, world_size):
    directory, bin_size, b = runs["m128"], 32, 2
    shards = ShardSet.open(directory)
    loaders = [
        PretrainLoader(shards, b, seed=2, world_size=world_size, rank=r, bin_size=bin_size)
        for r in range(world_size)
    ]
    n = loaders[0].batches_per_epoch()
    per_rank = [_take(ld, n) for ld in loaders]
    assert all(ld.batches_per_epoch() == n for ld in loaders)
    lengths = {
        (s << 32) + row: int(x)
        for s, r in enumerate(shards.training)
        for row, x in enumerate(r.read_all(("input_mask",))["input_mask"].sum(1))
    }
    for j in range(n):
        bins = set()
        for x in per_rank:
            batch = x[j]
            lens = [lengths[i] for i in batch["sample_ids"].tolist()]
            width = batch["input_ids"].shape[1]
            assert width % 8 == 0 and max(lens) <= width < max(lens) + 8
            assert batch["attention_mask"].sum(1).tolist() == lens
            assert int(batch["masked_lm_positions"].max()) < width
            bins |= {(n_ - 1) // bin_size for n_ in lens}
        assert len(bins) == 1  # one bin per batch, the same on every rank
    used = _ids(itertools.chain(*per_rank))
    assert len(used) == len(set(used))
    step = world_size * b
    for s in range(len(shards.training)):
        for k in range(128 // bin_size):
            members = {i for i, n_ in lengths.items() if i >> 32 == s and (n_ - 1) // bin_size == k}
            took = len(members & set(used))
            assert took % step == 0 and 0 <= len(members) - took < step


def test_bins_are_mixed_not_sorted(runs):
    # The bin sequence of a shard is a random interleaving, not bin after bin.
    loader = PretrainLoader(runs["m128"], 1, seed=0, bin_size=32, prefetch=False)
    widths = [b["input_ids"].shape[1] for b in _take(loader, 84)]
    changes = sum(a != b for a, b in zip(widths, widths[1:]))
    assert len(set(widths)) >= 3 and changes >= 6


# ---- validation -------------------------------------------------------------------------
@pytest.mark.parametrize("directory,world_size", [("m128", 1), ("m512", 3), ("m128", 2)])
def test_validation_all_once_deterministic(runs, directory, world_size):
    shards = ShardSet.open(runs[directory])
    seen = []
    for r in range(world_size):
        v = ValidationLoader(shards, 50, world_size=world_size, rank=r, pad_to_longest=True)
        a, b = list(v), list(v)
        assert len(a) == len(v) and sum(len(x["sample_ids"]) for x in a) == v.num_samples
        assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
        seen.append(_ids(a))
    flat = [i for x in seen for i in x]
    expect = [
        VALIDATION_ID_BASE + (s << 32) + row
        for s, c in enumerate(shards.counts("validation"))
        for row in range(c)
    ]  # noqa: E501
    assert sorted(flat) == expect
    if world_size == 1:
        assert flat == expect  # shard order, then row order


# ---- bad input --------------------------------------------------------------------------
def test_bad_inputs(runs, tmp_path):
    with pytest.raises(UserError, match="no shards"):
        PretrainLoader(tmp_path, 8)
    with pytest.raises(UserError, match="does not exist"):
        PretrainLoader(tmp_path / "nope", 8)
    shards = ShardSet.open(runs["m128"])
    check_compatible(shards, 3000, max_positions=512)
    with pytest.raises(UserError, match="vocab_size 30522"):
        check_compatible(shards, 30522)
    with pytest.raises(UserError, match="exceed"):
        check_compatible(shards, 3000, max_positions=64)
    with pytest.raises(UserError, match="fewer than one block"):
        PretrainLoader(shards, 50, world_size=2)
    with pytest.raises(UserError, match="not a multiple"):
        PretrainLoader(shards, 4, world_size=2, global_batch=12)
    with pytest.raises(UserError, match="rank"):
        PretrainLoader(shards, 4, world_size=2, rank=2)
    only_val = tmp_path / "val"
    only_val.mkdir()
    for p in runs["m128"].glob("shard_validation_*.hdf5"):
        shutil.copy(p, only_val / p.name)
    with pytest.raises(UserError, match="no training shards"):
        PretrainLoader(only_val, 4)
    no_vocab = tmp_path / "novocab"
    no_vocab.mkdir()
    for p in runs["u128"].glob("shard_training_*.hdf5"):
        shutil.copy(p, no_vocab / p.name)
    with pytest.raises(UserError, match="vocab.txt"):
        PretrainLoader(no_vocab, 4)


def test_bin_draws_weighted_by_remaining_samples():
    # 6, 3 and 1 global batches in bins 0, 1, 2: over many epochs the first step's bin follows
    # 0.6/0.3/0.1 (each batch holds rows of its bin only).
    bins = np.repeat([0, 1, 2], [60, 30, 10])
    first = np.zeros(3)
    for epoch in range(3000):
        rows, labels = binning.shard_plan(
            100, seed=1, epoch=epoch, shard=0, world_size=2, rank=0, micro_batch=5,
            block=10, bins=bins,
        )  # fmt: skip
        assert sorted(labels.tolist()) == [0] * 6 + [1] * 3 + [2]
        assert all(set(bins[r].tolist()) == {k} for r, k in zip(rows, labels))
        first[labels[0]] += 1
    assert np.allclose(first / first.sum(), [0.6, 0.3, 0.1], atol=0.03)


def test_ids_outside_model_vocab_are_refused(runs):
    loader = PretrainLoader(runs["m128"], 8, vocab_size=1000)
    with pytest.raises(UserError, match="outside the model's vocabulary of 1000"):
        next(iter(loader))
    loader.close()
    with pytest.raises(UserError, match="outside"):
        next(iter(ValidationLoader(runs["m128"], 8, vocab_size=1000)))
    assert len(_take(PretrainLoader(runs["m128"], 8, vocab_size=3000), 30)) == 30
