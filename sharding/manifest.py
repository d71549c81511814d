"""``manifest.json``: what a shard directory holds and how it was made.

Layout (keys sorted on disk, so equal content gives equal bytes)::

    {
      "schema_version": 1,
      "seq_length": 128, "max_predictions": 20, "masked": true, "nsp": true,
      "shards": [{"file": "shard_training_00000.hdf5", "split": "training",
                  "count": 4096, "sha256": "...", "bytes": 123456}, ...],
      "totals": {"training": 8192, "validation": 512},
      "vocab": {"file": "vocab.txt", "sha256": "...", "size": 30522},
      "seed": 12345,
      "config": {... every build option ...},
      "report": {... the run report: counts, skips with reasons ...}
    }

``shards`` is ordered by split then index. ``report`` and ``config`` are free JSON objects.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ground.atomic import write_text
from ground.errors import UserError
from sharding import schema
from sharding.vocab import load_vocab, parse_vocab_txt, vocab_from_tokens
from sharding.writer import ShardFile, file_sha256

MANIFEST_NAME = "manifest.json"
VOCAB_NAME = "vocab.txt"
TOKENIZER_NAME = "tokenizer.json"


@dataclass(frozen=True)
class ShardEntry:
    """One shard as listed in a manifest."""

    file: str
    split: str
    count: int
    sha256: str
    bytes: int


def vocab_info(vocab_path: str | os.PathLike) -> dict[str, Any]:
    """``{"file", "sha256", "size"}`` of a WordPiece vocab.txt (size = number of tokens)."""
    path = Path(vocab_path)
    return {"file": path.name, "sha256": file_sha256(path), "size": load_vocab(path).size}


def vocab_info_bytes(name: str, data: bytes) -> dict[str, Any]:
    """:func:`vocab_info` of vocab.txt content (for files on a Beam filesystem)."""
    size = vocab_from_tokens(parse_vocab_txt(data.decode("utf-8")), f"vocab {name}").size
    return {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "size": size}


def file_info(path: str | os.PathLike) -> dict[str, Any]:
    """``{"file", "sha256"}`` of any file (e.g. tokenizer.json)."""
    return {"file": Path(path).name, "sha256": file_sha256(path)}


def file_info_bytes(name: str, data: bytes) -> dict[str, Any]:
    """:func:`file_info` of a file's content."""
    return {"file": name, "sha256": hashlib.sha256(data).hexdigest()}


def build_manifest(
    *,
    seq_length: int,
    max_predictions: int,
    masked: bool,
    nsp: bool,
    shards: Iterable[tuple[str, ShardFile]],
    vocab: dict[str, Any],
    seed: int,
    config: dict[str, Any],
    report: dict[str, Any] | None = None,
    tokenizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict: ``shards`` is ``(split, ShardFile)`` pairs, any order.

    ``vocab`` is :func:`vocab_info` of the dir's vocab.txt; ``tokenizer`` (optional)
    ``{"file", "sha256"}`` of its tokenizer.json (:func:`file_info`).
    """
    entries = []
    for split, shard in shards:
        if split not in (schema.TRAINING, schema.VALIDATION):
            raise ValueError(f"unknown split {split!r} for {shard.name}")
        entries.append(
            {
                "file": shard.name,
                "split": split,
                "count": shard.count,
                "sha256": shard.sha256,
                "bytes": shard.bytes,
            }
        )
    entries.sort(key=lambda e: (e["split"] != schema.TRAINING, schema.natural_key(e["file"])))
    totals = {s: sum(e["count"] for e in entries if e["split"] == s) for s in schema_splits()}
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "seq_length": int(seq_length),
        "max_predictions": int(max_predictions) if masked else 0,
        "masked": bool(masked),
        "nsp": bool(nsp),
        "shards": entries,
        "totals": totals,
        "vocab": dict(vocab),
        "seed": int(seed),
        "config": dict(config),
        "report": dict(report or {}),
        **({"tokenizer": dict(tokenizer)} if tokenizer else {}),
    }


def schema_splits() -> tuple[str, str]:
    """The two splits, training first."""
    return (schema.TRAINING, schema.VALIDATION)


def dumps(manifest: dict[str, Any]) -> str:
    """Canonical JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_manifest(directory: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Write ``DIR/manifest.json`` atomically (temp file + fsync + rename); returns its path."""
    validate_manifest(manifest)
    directory = Path(directory)
    target = directory / MANIFEST_NAME
    write_text(target, dumps(manifest))
    return target


_REQUIRED = {
    "schema_version": int,
    "seq_length": int,
    "max_predictions": int,
    "masked": bool,
    "nsp": bool,
    "shards": list,
    "totals": dict,
    "vocab": dict,
}


def validate_manifest(manifest: Any, where: str = MANIFEST_NAME) -> None:
    """Check a manifest's structure and internal sums; :class:`UserError` naming the problem."""
    if not isinstance(manifest, dict):
        raise UserError(f"{where}: not a JSON object")
    for key, kind in _REQUIRED.items():
        if key not in manifest:
            raise UserError(f"{where}: key {key!r} is missing")
        value = manifest[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")
    if manifest["schema_version"] != schema.SCHEMA_VERSION:
        raise UserError(
            f"{where}: schema version {manifest['schema_version']}, this bertprep reads "
            f"{schema.SCHEMA_VERSION}"
        )
    names = set()
    for i, entry in enumerate(manifest["shards"]):
        if not isinstance(entry, dict) or not {"file", "split", "count", "sha256"} <= set(entry):
            raise UserError(f"{where}: shard entry {i} needs file, split, count and sha256")
        if entry["split"] not in schema_splits():
            raise UserError(f"{where}: {entry['file']}: unknown split {entry['split']!r}")
        if entry["file"] in names or "/" in entry["file"] or "\\" in entry["file"]:
            raise UserError(f"{where}: bad or repeated shard file name {entry['file']!r}")
        names.add(entry["file"])
    for split in schema_splits():
        listed = sum(e["count"] for e in manifest["shards"] if e["split"] == split)
        if manifest["totals"].get(split, 0) != listed:
            raise UserError(
                f"{where}: totals[{split!r}] = {manifest['totals'].get(split)} but its shards "
                f"hold {listed}"
            )


def load_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The validated manifest of ``directory``, or None when it has no ``manifest.json``."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    validate_manifest(manifest, str(path))
    return manifest


def entries(manifest: dict[str, Any], split: str | None = None) -> list[ShardEntry]:
    """Shard entries of a manifest, optionally of one split, in manifest order."""
    return [
        ShardEntry(e["file"], e["split"], int(e["count"]), e["sha256"], int(e.get("bytes", -1)))
        for e in manifest["shards"]
        if split is None or e["split"] == split
    ]


# Manifest keys that must agree for new shards to join (or replace) a directory's shards.
CONFIG_KEYS = ("seq_length", "max_predictions", "masked", "nsp", "seed", "config")


def config_differences(existing: dict[str, Any], planned: dict[str, Any]) -> list[str]:
    """Keys whose values differ between an existing manifest and a planned one.

    A build refuses an output dir holding shards of another config (unless ``--overwrite``)
    when this list is non-empty; the vocab is compared by sha256.
    """
    diffs = [k for k in CONFIG_KEYS if existing.get(k) != planned.get(k)]
    if existing.get("vocab", {}).get("sha256") != planned.get("vocab", {}).get("sha256"):
        diffs.append("vocab")
    return diffs


def world_size_warning(num_training_shards: int, world_size: int | None) -> str | None:
    """A warning when fewer training shards than planned ranks, else None.

    NVIDIA's loader gives each rank whole shards; with fewer shards than ranks some ranks
    repeat shards within an epoch (or idle), so the data seen is no longer balanced.
    """
    if world_size is None or world_size <= num_training_shards:
        return None
    return (
        f"only {num_training_shards} training shards for a world size of {world_size}: "
        "loaders that give each rank whole shards will reuse shards within an epoch; "
        f"rebuild with --num-shards >= {world_size} (a multiple of it is best)"
    )
