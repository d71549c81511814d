"""BuildShards as a Beam composite: TestPipeline + assert_that on sentences files made from a
real book and a real dump, as Beam's own examples test theirs. The composite writes token files,
buckets, shards and RUN/tmp/{buckets,shards}.json; its output is the number of shards written.
Expected instances come from the pure functions it wraps (``FastWordPiece.encode_document``,
``split_of``/``group_of``, ``build_group_instances``), called here group by group."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import apache_beam as beam
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.testing import test_pipeline  # not TestPipeline: pytest would collect it
from apache_beam.testing.util import assert_that, equal_to

from pipeline.common import run_report
from pipeline.common.parquet_io import RecordWriter
from pipeline.common.records import Document
from pipeline.extract.core import ExtractOptions, extract_unit
from pipeline.extract.units import plan_units
from pipeline.instances import plan
from pipeline.instances.builder import FlatDoc, build_group_instances
from pipeline.instances.masking import VocabInfo
from pipeline.instances.tokenize import FastWordPiece
from pipeline.instances.transforms import BuildShards
from pipeline.instances.types import InstanceConfig, InstancesSpec
from pipeline.segment.segment import get_splitter, segment_document
from pipeline.segment.transforms import SENTENCE_SCHEMA
from pipeline.vocab.files import load_vocab
from sharding.verify import verify_shard
from sharding.vocab import vocab_from_tokens

RUNNER = "FnApiRunner"  # TestPipeline's default DirectRunner first tries Prism (a download)
UNCASED = "bert-base-uncased-vocab.txt"
SEED = 12345


@pytest.fixture(scope="module")
def sentences(corpus_dir, tmp_path_factory) -> list[str]:
    """RUN/sentences/<unit>.parquet of The Yellow Wallpaper and the tinywiki dump, made with
    extract_unit and segment_document (what the extract and segment stages run)."""
    from pipeline.extract.wiki import clean

    clean.configure(expand_templates=False)
    run = tmp_path_factory.mktemp("inst-in")
    units = plan_units(
        [str(corpus_dir / "wikipedia" / "dumpster-dive_tinywiki-latest-pages-articles.xml")],
        [str(corpus_dir / "books" / "1952-0.txt")],
        [],
    )
    splitter = get_splitter("english")
    files = []
    for unit in units:
        path = str(run / "sentences" / f"{unit.key}.parquet")
        with RecordWriter(path, dict, SENTENCE_SCHEMA) as writer:
            for rec in extract_unit(unit, ExtractOptions(), run_report.empty()):
                if isinstance(rec, Document):
                    paragraphs, _ = segment_document(rec.text, splitter)
                    writer.write((rec.id, rec.source, rec.title, paragraphs))
        files.append(path)
    return files


def _docs(files: list[str]) -> list[tuple[str, list[str]]]:
    """(id, sentences) of every document, read with pyarrow."""
    out = []
    for f in files:
        for row in pq.read_table(f).to_pylist():
            out.append((row["id"], [s for para in row["paragraphs"] for s in para]))
    return out


def _spec(run: Path, tokens, configs, **over) -> InstancesSpec:
    spec = {
        "run_dir": str(run),
        "configs": configs,
        "seed": SEED,
        "vocab_tokens": tokens,
        "lowercase": True,
        "strip_accents": None,
        "validation_fraction": 0.0,
        "groups": 1,
        "num_shards": 2,
        "num_val_shards": 1,
        "gzip_level": 1,
        "relpaths": {},
        "inputs_sha256": "",
    }
    spec.update(over)
    spec["configs"], spec["vocab_tokens"] = tuple(spec["configs"]), tuple(spec["vocab_tokens"])
    return InstancesSpec(**spec)


def _run(files: list[str], spec: InstancesSpec, shards: int) -> None:
    with test_pipeline.TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(list(enumerate(files))) | BuildShards(spec)
        assert_that(out | beam.Map(lambda written: written["shards.json"]), equal_to([shards]))


def _key(tokens, restored, segments, positions, random_next) -> tuple:
    return (tuple(tokens), tuple(restored), tuple(segments), tuple(positions), int(random_next))


def _builder_instances(docs, vocab_path: str, cfg, vf: float, groups: int):
    """{split: (Counter of instances, stats dict)} from the builder, one group at a time."""
    fast = FastWordPiece.from_vocab_file(vocab_path, lowercase=True)
    vocab = VocabInfo.from_vocab_file(vocab_path)
    per_split = plan.groups_per_split(groups, vf)
    by_group: dict[tuple[str, int], list] = {}
    for doc_id, sents in docs:
        split = plan.split_of(doc_id, vf)
        group = plan.group_of(doc_id, SEED, per_split[split])
        by_group.setdefault((split, group), []).append(
            FlatDoc(doc_id, *fast.encode_document(sents))
        )
    out: dict[str, tuple[Counter, Counter]] = {}
    for (split, _), group_docs in sorted(by_group.items()):
        built, stats = build_group_instances(group_docs, cfg, vocab, SEED)
        found, totals = out.setdefault(split, (Counter(), Counter()))
        for i in built:
            restored = np.array(i.tokens)
            restored[np.asarray(i.masked_lm_positions, np.int64)] = i.masked_lm_ids
            found[
                _key(i.tokens, restored, i.segment_ids, i.masked_lm_positions, i.is_random_next)
            ] += 1
        totals.update(stats.as_dict())
    return out


def _stored(path: Path) -> Counter:
    """Instances of one shard, decoded by NVIDIA's rule: the first 0 in masked_lm_positions
    ends the masked list; the labels go back at those positions."""
    found = Counter()
    with h5py.File(path) as f:
        for i in range(f["input_ids"].shape[0]):
            n = int(f["input_mask"][i].sum())
            ids, pos, lab = f["input_ids"][i], f["masked_lm_positions"][i], f["masked_lm_ids"][i]
            zeros = np.nonzero(pos == 0)[0]
            k = int(zeros[0]) if len(zeros) else len(pos)
            restored = ids.copy()
            restored[pos[:k]] = lab[:k]
            seg = f["segment_ids"][i][:n]
            found[_key(ids[:n], restored[:n], seg, pos[:k], f["next_sentence_labels"][i])] += 1
    return found


def _validation_fraction(docs) -> float:
    """The smallest fraction of a grid that puts one document or more in validation while
    leaving The Yellow Wallpaper (the one long document) in training."""
    book = next(d for d, s in docs if len(s) > 100)
    for vf in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45):
        splits = {d: plan.split_of(d, vf) for d, _ in docs}
        if splits[book] == plan.TRAINING and plan.VALIDATION in splits.values():
            return vf
    raise AssertionError("no validation fraction of the grid splits these documents")


def test_shards_hold_the_builders_instances_per_phase_and_split(sentences, corpus_dir, tmp_path):
    vocab_path = str(corpus_dir / "vocab" / UNCASED)
    tokens = load_vocab(vocab_path).tokens
    configs = [
        InstanceConfig(max_seq_length=128, max_predictions_per_seq=20, dupe_factor=2),
        InstanceConfig(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1),
    ]
    docs = _docs(sentences)
    vf = _validation_fraction(docs)
    expected = {
        cfg.phase: _builder_instances(docs, vocab_path, cfg, vf, groups=2) for cfg in configs
    }
    # two training shards per phase, and one validation shard where there are instances
    n_shards = sum(
        2 + (sum(e.get(plan.VALIDATION, (Counter(),))[0].values()) > 0) for e in expected.values()
    )
    run = tmp_path / "run"
    spec = _spec(run, tokens, configs, validation_fraction=vf, groups=2)
    _run(sentences, spec, n_shards)

    vocab = vocab_from_tokens(tokens)
    listed = json.loads((run / "tmp" / "shards.json").read_text())
    assert len(listed) == n_shards
    for row in listed:  # the shard list describes the files on disk
        path = run / row["phase"] / row["file"]
        data = path.read_bytes()
        assert (row["bytes"], row["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        with h5py.File(path) as f:
            assert f["input_ids"].shape[0] == row["count"]
        assert verify_shard(path, vocab, nsp=True) == []
    for cfg in configs:
        phase = cfg.phase
        for split, (want, _) in expected[phase].items():
            paths = sorted((run / phase).glob(f"shard_{split}_*.hdf5"))
            assert len(paths) == (2 if split == plan.TRAINING else int(sum(want.values()) > 0))
            if not paths:
                continue
            stored = sum((_stored(q) for q in paths), Counter())
            assert stored == want, (phase, split)
            sizes = [r["count"] for r in listed if r["phase"] == phase and r["split"] == split]
            assert sum(sizes) == sum(want.values()) and max(sizes) - min(sizes) <= 1
    # the bucket list's stats add up to the builder's, phase by phase and split by split
    buckets = json.loads((run / "tmp" / "buckets.json").read_text())
    for phase, splits in expected.items():
        for split, (want, stats) in splits.items():
            got = Counter()
            for b in buckets:
                if b["phase"] == phase and b["split"] == split:
                    got.update(b["stats"])
            assert dict(got) == dict(stats) and got["instances"] == sum(want.values())
    # one token file per input, holding every document of that input
    for index, path in enumerate(sentences):
        written = pq.read_table(run / "tmp" / "tokens" / f"{index:06d}.parquet").to_pylist()
        assert sorted(r["id"] for r in written) == sorted(d for d, _ in _docs([path]))


def test_too_many_shards_is_recorded_and_nothing_is_written(sentences, corpus_dir, tmp_path):
    vocab_path = str(corpus_dir / "vocab" / UNCASED)
    cfg = InstanceConfig(max_seq_length=128, max_predictions_per_seq=20, dupe_factor=1)
    ((want, _),) = _builder_instances(_docs(sentences), vocab_path, cfg, 0.0, 1).values()
    total = sum(want.values())
    run = tmp_path / "run"
    spec = _spec(run, load_vocab(vocab_path).tokens, [cfg], num_shards=total + 1)
    _run(sentences, spec, 0)
    problems = json.loads((run / "tmp" / "problems.json").read_text())
    assert problems == [f"seq128 training: {total} instances cannot fill {total + 1} shards"]
    assert json.loads((run / "tmp" / "shards.json").read_text()) == []
    assert not (run / "seq128").exists()
