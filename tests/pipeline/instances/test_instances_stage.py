"""`bertprep instances` end to end: sentences -> balanced, verified, deterministic HDF5 shards."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from bertprep.cli import main as bertprep
from pipeline.common import run_report
from pipeline.instances.builder import FlatDoc, InstanceConfig, VocabInfo, build_group_instances
from pipeline.instances.tokenize import FastWordPiece
from sharding.verify import verify_dir
from tests.conftest import CORPUS

UNCASED = "bert-base-uncased-vocab.txt"


@pytest.fixture(scope="module")
def sentences_run(corpus_dir, two_books, tmp_path_factory):
    """extract + segment of two books and a small wiki file (no vocab: tests pass --vocab)."""
    run = tmp_path_factory.mktemp("inst")
    books = two_books
    wiki = str(corpus_dir / "wikipedia" / "wiki2txt_enwiki-52-pages.xml")
    assert (
        bertprep(["extract", "--books", str(books), "--wikipedia", wiki, "--output", str(run)]) == 0
    )
    assert bertprep(["segment", "--output", str(run)]) == 0
    return run


def _classic(text, run, *extra: str) -> int:
    """`bertprep instances` on a classic-format file: seq 128, dupe 1, bert-base-uncased."""
    return bertprep(
        [
            "instances",
            "--input",
            str(text),
            "--vocab",
            str(CORPUS / "vocab" / UNCASED),
            "--max-seq-length",
            "128",
            "--dupe-factor",
            "1",
            "--output",
            str(run),
            *extra,
        ]
    )


def _copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


def _sha(run, phase="seq128"):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((run / phase).glob("*.hdf5"))
    }


def _nvidia_decode(f, i):
    """NVIDIA's loader rule, written out independently: the first 0 in masked_lm_positions
    (after position 0) ends the masked list; labels go back at those positions."""
    ids = f["input_ids"][i]
    n = int(f["input_mask"][i].sum())
    pos, lab = f["masked_lm_positions"][i], f["masked_lm_ids"][i]
    zeros = np.nonzero(pos == 0)[0]
    k = int(zeros[0]) if len(zeros) else len(pos)
    original = ids.copy()
    original[pos[:k]] = lab[:k]
    return (
        tuple(ids[:n]),
        tuple(original[:n]),
        tuple(f["segment_ids"][i][:n]),
        tuple(pos[:k]),
        int(f["next_sentence_labels"][i]),
    )


def test_shards_balanced_verified_and_equal_to_builder(sentences_run, corpus_dir, tmp_path):
    run = _copy_run(sentences_run, tmp_path / "run")
    vocab = corpus_dir / "vocab" / UNCASED
    assert (
        bertprep(
            [
                "instances",
                "--output",
                str(run),
                "--vocab",
                str(vocab),
                "--max-seq-length",
                "128",
                "--dupe-factor",
                "2",
                "--num-shards",
                "3",
                "--validation-fraction",
                "0",
            ]
        )
        == 0
    )
    assert verify_dir(run / "seq128") == []
    counts = [h5py.File(p)["input_ids"].shape[0] for p in sorted((run / "seq128").glob("*.hdf5"))]
    assert len(counts) == 3 and max(counts) - min(counts) <= 1
    manifest = json.loads((run / "seq128" / "manifest.json").read_text())
    assert manifest["totals"]["training"] == sum(counts)
    stats = run_report.load_json(str(run / "report.json"))["instances"]["seq128"]["stats"]
    assert stats["instances"] == sum(counts)
    # The same documents through the builder directly (one group: the corpus is small).
    fast = FastWordPiece.from_vocab_file(str(vocab), lowercase=True)
    docs = []
    for f in sorted((run / "sentences").glob("*.parquet")):
        for row in pq.read_table(f).to_pylist():
            sents = [s for para in row["paragraphs"] for s in para]
            docs.append(FlatDoc(row["id"], *fast.encode_document(sents)))
    cfg = InstanceConfig(max_seq_length=128, max_predictions_per_seq=20, dupe_factor=2)
    built, _ = build_group_instances(docs, cfg, VocabInfo.from_vocab_file(str(vocab)), 12345)

    def restored(i):  # the instance before masking, from the builder's own record
        t = np.array(i.tokens)
        t[np.asarray(i.masked_lm_positions, dtype=np.int64)] = i.masked_lm_ids
        return tuple(t)

    expected = Counter(
        (tuple(i.tokens), restored(i), tuple(i.segment_ids), tuple(i.masked_lm_positions),
         int(i.is_random_next))
        for i in built
    )  # fmt: skip
    stored = Counter()
    for p in sorted((run / "seq128").glob("*.hdf5")):
        with h5py.File(p) as f:
            for i in range(f["input_ids"].shape[0]):
                ids, original, seg, pos, nsp = _nvidia_decode(f, i)
                stored[(ids, original, seg, pos, nsp)] += 1
    assert stored == expected


def test_same_checksums_across_workers_and_runners(sentences_run, corpus_dir, tmp_path):
    vocab = str(corpus_dir / "vocab" / UNCASED)
    sums = {}
    for name, extra in {
        "one": [],
        "two": ["--direct_num_workers", "2"],
        "bundle": ["--runner", "BundleBasedDirectRunner"],
    }.items():
        run = _copy_run(sentences_run, tmp_path / name)
        assert (
            bertprep(
                [
                    "instances",
                    "--output",
                    str(run),
                    "--vocab",
                    vocab,
                    "--max-seq-length",
                    "128",
                    "--dupe-factor",
                    "1",
                    "--num-shards",
                    "2",
                    "--group-tokens",
                    "20000",
                    "--validation-fraction",
                    "0.2",
                    *extra,
                ]
            )
            == 0
        )
        sums[name] = _sha(run)
    assert sums["one"] == sums["two"] == sums["bundle"]
    assert len(sums["one"]) == 3  # 2 training + 1 validation
    assert any("validation" in name for name in sums["one"])


def test_remote_run_dir_gives_the_same_shards(sentences_run, corpus_dir, tmp_path):
    """HDF5 needs local files: shards are written locally and copied through Beam FileSystems
    (memfs:// stands in for gs://); the bytes equal a local run's."""
    from tests.pipeline.memfs import MemFileSystem

    args = ["--vocab", str(corpus_dir / "vocab" / UNCASED), "--max-seq-length", "128",
            "--dupe-factor", "1", "--num-shards", "2"]  # fmt: skip
    local = _copy_run(sentences_run, tmp_path / "local")
    assert bertprep(["instances", "--output", str(local), *args]) == 0
    MemFileSystem.put_tree(sentences_run, "memfs://remote")
    assert bertprep(["instances", "--output", "memfs://remote", *args]) == 0
    names = sorted(p.name for p in (local / "seq128").iterdir() if p.suffix == ".hdf5")
    assert sum("training" in n for n in names) == 2
    for name in names + ["manifest.json"]:
        assert (
            MemFileSystem.FILES[f"memfs://remote/seq128/{name}"]
            == (local / "seq128" / name).read_bytes()
        ), name
    assert "memfs://remote/seq128/_SUCCESS" in MemFileSystem.FILES


def test_both_phases_and_rerun_rules(sentences_run, corpus_dir, tmp_path, capsys):
    run = _copy_run(sentences_run, tmp_path / "run")
    vocab = str(corpus_dir / "vocab" / UNCASED)
    base = ["instances", "--output", str(run), "--vocab", vocab, "--dupe-factor", "1"]
    assert bertprep(base) == 0
    for phase, seq, pred in (("seq128", 128, 20), ("seq512", 512, 80)):
        m = json.loads((run / phase / "manifest.json").read_text())
        assert (m["seq_length"], m["max_predictions"]) == (seq, pred)
        assert (run / phase / "vocab.txt").read_bytes() == (
            corpus_dir / "vocab" / UNCASED
        ).read_bytes()
    before = _sha(run, "seq512")
    assert bertprep(base) == 0  # complete and same config: nothing to do
    assert "already complete" in capsys.readouterr().err
    assert bertprep(base + ["--seed", "7"]) == 2  # another config: refused
    assert "--overwrite" in capsys.readouterr().err
    assert bertprep(base + ["--seed", "7", "--overwrite"]) == 0
    assert _sha(run, "seq512") != before


def test_classic_text_input(sentences_run, corpus_dir, tmp_path):
    text = tmp_path / "classic.txt"
    lines = []
    for f in sorted((sentences_run / "sentences").glob("*.parquet")):
        for row in pq.read_table(f).to_pylist():
            lines += [s for para in row["paragraphs"] for s in para] + [""]
    text.write_text("\n".join(lines), encoding="utf-8")
    run = tmp_path / "run"
    assert _classic(text, run) == 0
    assert verify_dir(run / "seq128") == []


def test_classic_files_with_one_name_in_two_folders(sentences_run, tmp_path):
    # wikiextractor's layout: AA/wiki_00, AB/wiki_00, ... (ids seed on the relative path)
    lines = []
    for f in sorted((sentences_run / "sentences").glob("*.parquet")):
        for row in pq.read_table(f).to_pylist():
            lines += [s for para in row["paragraphs"] for s in para] + [""]
    half = lines.index("", len(lines) // 2) + 1
    for sub, part in (("AA", lines[:half]), ("AB", lines[half:])):
        (tmp_path / "out" / sub).mkdir(parents=True)
        (tmp_path / "out" / sub / "wiki_00").write_text("\n".join(part), encoding="utf-8")
    assert _classic(tmp_path / "out" / "*" / "wiki_00", tmp_path / "run") == 0
    assert verify_dir(tmp_path / "run" / "seq128") == []
    # other inputs, same flags: not "already complete", refused without --overwrite
    assert _classic(tmp_path / "out" / "AA" / "wiki_00", tmp_path / "run") == 2
    two_roots = ["--input", str(tmp_path / "out" / "AB" / "wiki_00")]  # same relpath "wiki_00"
    assert _classic(tmp_path / "out" / "AA" / "wiki_00", tmp_path / "run2", *two_roots) == 0


def test_bad_inputs_are_clear_errors(sentences_run, corpus_dir, tmp_path, capsys):
    run = _copy_run(sentences_run, tmp_path / "run")
    vocab = str(corpus_dir / "vocab" / UNCASED)
    base = ["instances", "--output", str(run), "--max-seq-length", "128", "--dupe-factor", "1"]
    assert bertprep(base + ["--vocab", vocab, "--num-shards", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert bertprep(base + ["--vocab", vocab, "--gzip-level", "99"]) == 2
    assert "--gzip-level must be 0..9, got 99" in capsys.readouterr().err
    assert not (run / "tmp" / "tokens").exists()  # refused before tokenizing
    docs = sorted((run / "docs").glob("*.parquet"))
    assert docs  # RUN/docs given where sentences are expected: said, not a KeyError in a worker
    assert bertprep(base + ["--vocab", vocab, "--input", str(docs[0]), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a documents file (RUN/docs: run bertprep segment" in err[0], err
    assert bertprep(base + ["--vocab", vocab, "--num-shards", "1000000", "--overwrite"]) == 2
    assert "cannot fill" in capsys.readouterr().err
    assert bertprep(base) == 2  # no RUN/vocab and no --vocab
    assert "no vocab" in capsys.readouterr().err
    mismatch = tmp_path / "v"
    mismatch.mkdir()
    assert bertprep(["vocab", "--output", str(run), "--vocab-size", "3000"]) == 0
    shutil.copy(run / "vocab" / "tokenizer.json", mismatch / "tokenizer.json")
    shutil.copy(vocab, mismatch / "vocab.txt")
    assert bertprep(base + ["--vocab", str(mismatch / "tokenizer.json"), "--overwrite"]) == 2
    assert "different vocabularies" in capsys.readouterr().err


def test_one_sentence_longer_than_the_sequence_is_counted(corpus_dir, tmp_path):
    long_sentence = " ".join(["word"] * 400)
    text = tmp_path / "c.txt"
    text.write_text(f"Short one.\n{long_sentence}\n\nA second document.\nWith two lines.\n")
    run = tmp_path / "run"
    assert _classic(text, run, "--validation-fraction", "0") == 0
    stats = run_report.load_json(str(run / "report.json"))["instances"]["seq128"]["stats"]
    assert stats["long_sentences"] >= 1 and stats["truncated"] >= 1
    assert verify_dir(run / "seq128") == []


@pytest.mark.parametrize("mode", ["--unmasked", "--no-nsp", "--whole-word-mask"])
def test_modes_write_verified_shards(sentences_run, corpus_dir, tmp_path, mode):
    run = _copy_run(sentences_run, tmp_path / "run")
    assert (
        bertprep(
            [
                "instances",
                "--output",
                str(run),
                "--vocab",
                str(corpus_dir / "vocab" / UNCASED),
                "--max-seq-length",
                "128",
                "--dupe-factor",
                "1",
                mode,
            ]
        )
        == 0
    )
    assert verify_dir(run / "seq128") == []
    manifest = json.loads((run / "seq128" / "manifest.json").read_text())
    with h5py.File(next((run / "seq128").glob("shard_training_*.hdf5"))) as f:
        ids, segs = f["input_ids"][:], f["segment_ids"][:]
        if mode == "--unmasked":
            assert "masked_lm_positions" not in f and manifest["masked"] is False
            assert not (ids == 103).any()  # no [MASK] token stored
        if mode == "--no-nsp":
            assert manifest["nsp"] is False and not segs.any()
            assert ((ids == 102).sum(axis=1) == 1).all()  # one [SEP]
            assert not f["next_sentence_labels"][:].any()
