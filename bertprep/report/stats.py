"""Generic helpers of the report's data gathering: histograms, Parquet and JSONL reading,
BERT pre-token counting, and finding run/training directories.

Units: word counts are whitespace-separated words; histogram edges are integers (words or
characters) and bins are half-open ``[lo, hi)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ground.errors import UserError

# BERT's pre-tokeniser (HF BertPreTokenizer) splits on whitespace and punctuation (Unicode
# category P or ASCII punctuation), each punctuation character a word of its own. RE2 syntax.
_PUNCT = r"\pP!-/:-@\[-`{-~"
PRETOKEN_RE = rf"[^\s{_PUNCT}]+|[{_PUNCT}]"
RANK_POINTS = 200  # points of the rank/count curve kept for the plot (log-spaced ranks)
RUN_MARKERS = ("report.json", "docs", "sentences", "vocab", "seq128", "seq512")


def pow2_edges(values: np.ndarray) -> list[int]:
    """Bin edges 0, 1, 2, 4, ... up to the first power of two above the largest value, less
    the leading edges whose bins would be empty (the first bin holds the smallest value)."""
    edges, e = [0, 1], 1
    while e <= int(values.max(initial=0)):
        e *= 2
        edges.append(e)
    low = int(values.min()) if values.size else 0
    while len(edges) > 2 and edges[1] <= low:
        edges.pop(0)
    return edges


def histogram(values: np.ndarray, edges: list[int], overflow: bool) -> dict[str, Any]:
    """Counts of ``values`` in ``[edges[i], edges[i+1])``; with ``overflow`` a last bin
    ``[edges[-1], inf)``. Returns ``{"edges": [...], "counts": [...], "overflow": bool}``."""
    bins = list(edges) + ([np.inf] if overflow else [])
    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=bins)
    return {"edges": list(edges), "counts": [int(c) for c in counts], "overflow": overflow}


def parquet_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.parquet"))


def word_counts(strings) -> np.ndarray:
    """Whitespace-separated words of each string of an Arrow string array."""
    return pc.list_value_length(pc.utf8_split_whitespace(strings)).to_numpy(zero_copy_only=False)


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a line that is not a JSON object is a :class:`UserError`."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: not a JSON object")
        rows.append(row)
    return rows


def flat_numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    """Every int/float leaf of a JSON object, keyed ``a.b.c`` (booleans left out)."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat_numbers(v, f"{prefix}{k}."))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix[:-1]] = obj
    return out


def discover(run: Path, pattern_names: tuple[str, ...]) -> list[Path]:
    """Subdirectories of ``run`` matching any glob of ``pattern_names`` that hold a
    metrics.jsonl (or, for fine-tuning, a summary), in the order of the patterns, names sorted."""
    found: list[Path] = []
    for pattern in pattern_names:
        for d in sorted(run.glob(pattern)):
            has = (d / "metrics.jsonl").is_file() or any(d.glob("*summary*.json"))
            if d.is_dir() and has and d not in found:
                found.append(d)
    return found


def check_run_dir(run: Path) -> None:
    """:class:`UserError` unless ``run`` is a directory holding at least one run artifact."""
    if not run.is_dir():
        raise UserError(f"{run} is not a directory (expected a bertprep run directory)")
    if not any((run / m).exists() for m in RUN_MARKERS):
        raise UserError(
            f"{run} is not a bertprep run directory: none of {', '.join(RUN_MARKERS)} found"
        )


def rank_curve(counts_path: Path) -> dict[str, Any]:
    """Word rank/count curve of a ``word<TAB>count`` file sorted by count (at most
    ``RANK_POINTS`` log-spaced ranks) and the share of occurrences in the top 1k, 10k... words."""
    counts = np.array(
        [int(line.rsplit("\t", 1)[1]) for line in counts_path.open(encoding="utf-8") if line],
        dtype=np.int64,
    )
    total = int(counts.sum())
    ranks = np.unique(np.geomspace(1, max(len(counts), 1), RANK_POINTS).astype(np.int64))
    cum = np.cumsum(counts)
    tops = [k for k in (1000, 10_000, 100_000, 1_000_000) if k < len(counts)]
    return {
        "distinct_words": int(len(counts)),
        "occurrences": total,
        "ranks": ranks.tolist() if len(counts) else [],
        "rank_counts": counts[ranks - 1].tolist() if len(counts) else [],
        "top_share": {str(k): float(cum[k - 1] / total) for k in tops},
    }
