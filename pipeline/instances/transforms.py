"""Beam wiring of the instances stage. Only keys, counts and file references are shuffled.

::

    inputs -> _TokenizeFileFn -writes-> RUN/tmp/tokens/<n>.parquet, one row group per
                 |                      (split, group), rows sorted by document id
                 '-((split, group), (file, row group))-> GroupByKey -> _BuildGroupFn
                        -writes-> RUN/tmp/buckets/<phase>/<split>-<group>.hdf5
                        '-(bucket, stats)-> Collect -+-> RUN/tmp/buckets.json ------------.
                                                     '-> _PlanShardsFn -> ShardPlan        |
                              -> Spread -> _WriteShardFn                                   |
                                    -writes-> RUN/<phase>/shard_<split>_NNNNN.hdf5        |
                                    '-(phase, split, ShardFile)-> Collect                  |
                                          -> RUN/tmp/shards.json --> Flatten <------------'
                                                                       -> Collect (the end)

Both lists end in one last step, so a runner that computes only the pipeline's last leaf
(Dask) writes both; the lists are gathered by :class:`pipeline.common.portable.Collect` and
the shard plans spread by :class:`pipeline.common.portable.Spread` (see that module for why).
The launcher (:mod:`pipeline.instances.finish`) then writes manifests and verifies.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from pipeline.common import fs, portable
from pipeline.common.file_stage import basename
from pipeline.common.parquet_io import iter_rows
from pipeline.instances import buckets as instance_buckets
from pipeline.instances import plan as instances_plan
from pipeline.instances.builder import FlatDoc, build_group_batches
from pipeline.instances.classic_format import read_documents
from pipeline.instances.masking import VocabInfo
from pipeline.instances.plan import Bucket
from pipeline.instances.tokenize import FastWordPiece
from pipeline.instances.types import InstancesSpec
from pipeline.vocab.files import build_tokenizer  # the one cross-stage import: the vocab files
from sharding import schema
from sharding.verify import verify_shard
from sharding.vocab import vocab_from_tokens
from sharding.writer import ShardFile, file_sha256, write_shard

TOKENS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("tokens", pa.list_(pa.int32())),
        ("offsets", pa.list_(pa.int64())),
    ]
)


def iter_input_documents(path: str, relpath: str | None = None):
    """(doc id, sentences) from a RUN/sentences Parquet file or a classic text file; a classic
    file's ids derive from ``relpath`` (default: its base name)."""
    if path.endswith(".parquet"):
        for row in iter_rows(path, columns=["id", "paragraphs"]):
            yield row["id"], [s for para in row["paragraphs"] for s in para]
        return

    with fs.open_read(path) as f:
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    yield from read_documents(lines, relpath or basename(path))


class _TokenizeFileFn(beam.DoFn):
    """Tokenize one input file; store documents by (split, group); emit the row-group refs."""

    def __init__(self, spec: InstancesSpec):
        self._spec = spec

    def setup(self):

        s = self._spec
        tok = build_tokenizer(s.vocab_tokens, s.lowercase, s.strip_accents)
        self._fast = FastWordPiece.from_tokenizer(tok)
        self._groups = instances_plan.groups_per_split(s.groups, s.validation_fraction)

    def process(self, item: tuple[int, str]):
        index, path = item
        s = self._spec
        by_key: dict[tuple[str, int], list] = {}
        for doc_id, sentences in iter_input_documents(path, s.relpaths.get(path)):
            tokens, offsets = self._fast.encode_document(sentences)
            split = instances_plan.split_of(doc_id, s.validation_fraction)
            group = instances_plan.group_of(doc_id, s.seed, self._groups[split])
            by_key.setdefault((split, group), []).append((doc_id, tokens, offsets))
        out = fs.join(s.run_dir, "tmp", "tokens", f"{index:06d}.parquet")
        fd, local = tempfile.mkstemp(suffix=".parquet", prefix="bertprep-tokens-")
        os.close(fd)
        refs = []
        with pq.ParquetWriter(local, TOKENS_SCHEMA, compression="zstd") as writer:
            for rg, key in enumerate(sorted(by_key)):
                rows = sorted(by_key[key], key=lambda r: r[0])
                writer.write_table(
                    pa.table(
                        [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
                        schema=TOKENS_SCHEMA,
                    )
                )
                refs.append((key, (out, rg)))
        fs.publish_local(local, out)
        Metrics.counter("instances", "documents").inc(sum(len(v) for v in by_key.values()))
        yield from refs


class _BuildGroupFn(beam.DoFn):
    """Build every phase's instances of one (split, group); write them to buckets."""

    def __init__(self, spec: InstancesSpec):
        self._spec = spec

    def setup(self):

        self._vocab = VocabInfo.from_tokens(self._spec.vocab_tokens)

    def process(self, item):

        (split, group), refs = item
        docs = []
        for path, rg in sorted(refs):
            with fs.open_read(path) as f:
                table = pq.ParquetFile(f).read_row_group(rg)
            for row in table.to_pylist():
                docs.append(
                    FlatDoc(
                        row["id"],
                        np.asarray(row["tokens"], np.int32),
                        np.asarray(row["offsets"], np.int64),
                    )
                )
        for cfg in self._spec.configs:
            parts, stats = [], None
            for batch, st in build_group_batches(docs, cfg, self._vocab, self._spec.seed):
                if len(batch):
                    parts.append(_arrays(batch, cfg))
                stats = st if stats is None else stats.merge(st)
            path = fs.join(
                self._spec.run_dir, "tmp", "buckets", cfg.phase, f"{split}-{group:05d}.hdf5"
            )
            count = (
                instance_buckets.write_bucket(path, instance_buckets.concat(parts)) if parts else 0
            )
            yield cfg.phase, split, Bucket(path, group, count), stats.as_dict()


def _arrays(batch, cfg) -> dict[str, np.ndarray]:
    arrays = batch.arrays()
    if cfg.unmasked:
        del arrays["masked_lm_positions"], arrays["masked_lm_ids"]
    return arrays


class _PlanShardsFn(beam.DoFn):
    """All buckets -> one ShardPlan per output shard (or a recorded problem)."""

    def __init__(self, spec: InstancesSpec):
        self._spec = spec

    def process(self, buckets: list):
        s = self._spec
        problems = []
        for cfg in s.configs:
            for split in (instances_plan.TRAINING, instances_plan.VALIDATION):
                mine = [b for phase, sp, b, _ in buckets if phase == cfg.phase and sp == split]
                total = sum(b.count for b in mine)
                if split == instances_plan.VALIDATION and total == 0:
                    continue  # no validation documents: a note in the report, no shards
                n = s.num_shards if split == instances_plan.TRAINING else s.num_val_shards
                n = n or instances_plan.auto_num_shards(total)
                try:
                    yield from instances_plan.plan_shards(cfg.phase, split, mine, n)
                except ValueError as exc:
                    problems.append(str(exc))
        if problems:
            path = fs.join(s.run_dir, "tmp", "problems.json")
            fs.write_bytes(path, json.dumps(problems).encode())


class _WriteShardFn(beam.DoFn):
    """Gather one shard's rows from the buckets, shuffle them, write the HDF5 shard, verify it.

    Verification (schema, ids against the vocab, mask/segment layout, sorted positions) runs
    here, on every worker in parallel, on the exact file that is then published.
    """

    def __init__(self, spec: InstancesSpec):
        self._spec = spec

    def setup(self):

        self._vocab = vocab_from_tokens(self._spec.vocab_tokens)

    def process(self, plan):

        s = self._spec
        name = schema.shard_name(plan.split, plan.index)
        dest = fs.join(s.run_dir, plan.phase, name)
        cfg = next(c for c in s.configs if c.phase == plan.phase)
        if "://" not in dest and os.path.exists(dest):  # resumed build: shards are deterministic
            count = len(range(0, plan.count))
            yield (
                plan.phase,
                plan.split,
                ShardFile(name, count, file_sha256(dest), os.path.getsize(dest)),
            )
            return
        parts = [instance_buckets.read_rows(p, first, step) for p, first, step in plan.sources]
        arrays = instance_buckets.concat(parts)
        seed = instances_plan.shard_seed(s.seed, plan.phase, plan.split, plan.index)
        arrays = instances_plan.shuffle_rows(arrays, seed)
        tmpdir = tempfile.mkdtemp(prefix="bertprep-shard-")
        try:
            local = os.path.join(tmpdir, name)
            shard = write_shard(local, arrays, nsp=not cfg.no_nsp, compression_level=s.gzip_level)
            problems = verify_shard(Path(local), self._vocab, nsp=not cfg.no_nsp)
            if problems:  # a bug, never a user error: stop the run loudly
                raise RuntimeError(f"{name} failed verification: {problems[:5]}")
            fs.publish_local(os.path.join(tmpdir, name), dest)
        finally:
            for f in os.listdir(tmpdir):
                os.unlink(os.path.join(tmpdir, f))
            os.rmdir(tmpdir)
        Metrics.counter("instances", f"shards_{plan.phase}").inc()
        yield plan.phase, plan.split, shard


def shard_key(plan) -> str:
    """A shard plan's distinct key (phase, split, index): what :class:`portable.Spread` spreads."""
    return f"{plan.phase}/{plan.split}/{plan.index:05d}"


class BuildShards(beam.PTransform):
    """(index, input path) pairs in; shards, bucket stats and shard list written under RUN.

    The output is one element, ``{"buckets.json": rows, "shards.json": rows}``, made only after
    both lists are written.
    """

    def __init__(self, spec: InstancesSpec):
        super().__init__()
        self._spec = spec

    def expand(self, files):
        s = self._spec
        buckets = (
            files
            | "SpreadFiles" >> beam.Reshuffle()
            | "Tokenize" >> beam.ParDo(_TokenizeFileFn(s))
            | "ByGroup" >> beam.GroupByKey()
            | "Build" >> beam.ParDo(_BuildGroupFn(s))
            | "AllBuckets" >> portable.Collect()
        )
        bucket_list = buckets | "BucketStats" >> beam.ParDo(_WriteListFn(s, "buckets.json"))
        shard_list = (
            buckets
            | "Plan" >> beam.ParDo(_PlanShardsFn(s))
            | "SpreadShards" >> portable.Spread(shard_key)
            | "Write" >> beam.ParDo(_WriteShardFn(s))
            | "AllShards" >> portable.Collect()
            | "ShardList" >> beam.ParDo(_WriteListFn(s, "shards.json"))
        )
        return (
            (bucket_list, shard_list)
            | "BothLists" >> beam.Flatten()
            | "Done" >> portable.Collect()
            | "Counts" >> beam.Map(dict)
        )


class _WriteListFn(beam.DoFn):
    """Write a collected list as JSON under RUN/tmp for the launcher to finish the stage;
    yields ``(file name, rows written)``."""

    def __init__(self, spec: InstancesSpec, name: str):
        self._name = name
        self._path = fs.join(spec.run_dir, "tmp", name)

    def process(self, items: list):
        rows = []
        for item in items:
            if len(item) == 4:  # (phase, split, Bucket, stats)
                phase, split, b, stats = item
                rows.append(
                    {
                        "phase": phase,
                        "split": split,
                        "path": b.path,
                        "group": b.group,
                        "count": b.count,
                        "stats": stats,
                    }
                )
            else:  # (phase, split, ShardFile)
                phase, split, shard = item
                rows.append(
                    {
                        "phase": phase,
                        "split": split,
                        "file": shard.name,
                        "count": shard.count,
                        "sha256": shard.sha256,
                        "bytes": shard.bytes,
                    }
                )
        rows.sort(key=lambda r: json.dumps(r, sort_keys=True))
        fs.write_bytes(self._path, json.dumps(rows, sort_keys=True).encode())
        yield self._name, len(rows)
