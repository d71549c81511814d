"""Run report: counts per stage that add up, merged across workers, written as JSON.

A stage's counts are a plain dict (JSON-ready, so Beam can combine them anywhere)::

    {"docs_in": int, "docs_out": int,
     "skipped": {reason: int}, "rejected": {reason: int},
     "by_source": {source: {"docs_in": int, "docs_out": int}},
     "notes": {key: int}, "cuts": [{"path": str, "detail": str}]}

with the invariant ``docs_in == docs_out + sum(skipped) + sum(rejected)``. ``RUN/report.json``
holds the extraction counts at the top level (fixed keys) and each later stage under its name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pipeline.common import fs
from pipeline.common.records import SKIPPED, Document, Dropped

# Written last into a stage's output directory: the stage is complete. ``build`` skips a stage
# whose output holds it (with equal options); every stage and ``build`` use this one name.
DONE_MARKER = "_SUCCESS"


def empty() -> dict:
    """A zero report."""
    return {
        "docs_in": 0,
        "docs_out": 0,
        "skipped": {},
        "rejected": {},
        "by_source": {},
        "notes": {},
        "cuts": [],
    }


def _bump(d: dict, key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


def count(report: dict, record: Document | Dropped) -> None:
    """Count one record that left a source reader: a kept document or a dropped one."""
    src = report["by_source"].setdefault(record.source, {"docs_in": 0, "docs_out": 0})
    report["docs_in"] += 1
    src["docs_in"] += 1
    if isinstance(record, Document):
        report["docs_out"] += 1
        src["docs_out"] += 1
    else:
        _bump(report["skipped" if record.kind == SKIPPED else "rejected"], record.reason)


def reclassify(report: dict, source: str, reason: str, n: int = 1) -> None:
    """Move ``n`` kept documents of ``source`` to rejected with ``reason`` (e.g. duplicate)."""
    report["docs_out"] -= n
    report["by_source"][source]["docs_out"] -= n
    _bump(report["rejected"], reason, n)


def note(report: dict, key: str, n: int = 1) -> None:
    """Count something that is not a document (repaired bytes, cut sentences...)."""
    _bump(report["notes"], key, n)


def merge(reports: Iterable[dict]) -> dict:
    """Sum reports; cuts are concatenated and sorted so the result is order-independent."""
    out = empty()
    for r in reports:
        out["docs_in"] += r["docs_in"]
        out["docs_out"] += r["docs_out"]
        for key in ("skipped", "rejected", "notes"):
            for reason, n in r[key].items():
                _bump(out[key], reason, n)
        for src, c in r["by_source"].items():
            dst = out["by_source"].setdefault(src, {"docs_in": 0, "docs_out": 0})
            dst["docs_in"] += c["docs_in"]
            dst["docs_out"] += c["docs_out"]
        out["cuts"].extend(r["cuts"])
    out["cuts"].sort(key=lambda c: (c["path"], c["detail"]))
    return canonical(out)


def canonical(report: dict) -> dict:
    """Same report with every mapping sorted by key (stable JSON bytes)."""
    out = dict(report)
    for key in ("skipped", "rejected", "notes"):
        out[key] = dict(sorted(report[key].items()))
    out["by_source"] = {k: report["by_source"][k] for k in sorted(report["by_source"])}
    return out


def balanced(report: dict) -> bool:
    """Whether ``docs_in == docs_out + sum(skipped) + sum(rejected)``."""
    dropped = sum(report["skipped"].values()) + sum(report["rejected"].values())
    return report["docs_in"] == report["docs_out"] + dropped


def dumps(obj: dict) -> bytes:
    """Deterministic JSON bytes (sorted keys, 2-space indent, trailing newline)."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def load_json(path: str) -> dict:
    """Read a JSON file from any filesystem; ``{}`` when it does not exist."""
    if not fs.exists(path):
        return {}
    with fs.open_read(path) as f:
        return json.loads(f.read().decode())


def update_run_report(run_dir: str, stage: str, stage_report: dict) -> dict:
    """Merge ``stage_report`` into ``RUN/report.json`` and write it atomically.

    The extraction stage's counts sit at the top level (``docs_in``, ``docs_out``, ``skipped``,
    ``rejected``, ...); every other stage's report is stored under its name.
    """
    path = fs.join(run_dir, "report.json")
    current = load_json(path)
    if stage == "extract":
        current.update(stage_report)
    else:
        current[stage] = stage_report
    fs.write_bytes(path, dumps(current))
    return current
