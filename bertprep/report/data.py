"""Gather the numbers of ``bertprep report`` from a run directory into plain dicts.

Pure reading, no plotting: every figure of the report is drawn from one section returned by
:func:`gather`. A section is ``None`` when that part of the run does not exist yet (no
training, no shards...); the reason is in ``gathered["missing"]``. Local paths only.

Units: lengths in words (whitespace-separated) or characters (Unicode code points); token
counts per source are *estimates* (BERT pre-tokenised words x the vocab's held-out
tokens-per-word), since the instances do not record their source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bertprep.report.stats import (
    PRETOKEN_RE,
    check_run_dir,
    discover,
    flat_numbers,
    histogram,
    parquet_files,
    pow2_edges,
    rank_curve,
    read_jsonl,
    word_counts,
)
from ground.errors import UserError
from sharding.inspect import inspect_dir

SENTENCE_WORD_BINS = list(range(0, 105, 5))  # 5-word bins up to 100, then "100+"
SENTENCE_CHAR_BINS = list(range(0, 525, 25))  # 25-char bins up to 500, then "500+"


def gather_docs(run: Path, tokens_per_word: float | None) -> dict[str, Any] | None:
    """Per source: documents, words, chars, pre-tokenised words, estimated tokens; and the
    document length histograms (words and chars, power-of-two bins)."""
    files = parquet_files(run / "docs")
    if not files:
        return None
    per_source: dict[str, dict[str, int]] = {}
    words_all, chars_all = [], []
    for path in files:
        table = pq.read_table(path, columns=["source", "text"])
        text = table.column("text")
        words = word_counts(text)
        chars = pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
        pretok = pc.count_substring_regex(text, PRETOKEN_RE).to_numpy(zero_copy_only=False)
        sources = np.asarray(table.column("source").to_pylist(), dtype=object)
        for src in sorted(set(sources.tolist())):
            sel = sources == src
            d = per_source.setdefault(src, {"documents": 0, "words": 0, "chars": 0, "pretok": 0})
            d["documents"] += int(sel.sum())
            d["words"] += int(words[sel].sum())
            d["chars"] += int(chars[sel].sum())
            d["pretok"] += int(pretok[sel].sum())
        words_all.append(words)
        chars_all.append(chars)
    words = np.concatenate(words_all)
    chars = np.concatenate(chars_all)
    for d in per_source.values():
        d["est_tokens"] = int(round(d["pretok"] * tokens_per_word)) if tokens_per_word else None
    return {
        "per_source": dict(sorted(per_source.items())),
        "tokens_per_word": tokens_per_word,
        "length_words": histogram(words, pow2_edges(words), False),
        "length_chars": histogram(chars, pow2_edges(chars), False),
    }


def gather_sentences(run: Path) -> dict[str, Any] | None:
    """Per source: documents, paragraphs, sentences; sentence length histograms (words in
    5-word bins, chars in 25-char bins, each with an overflow bin)."""
    files = parquet_files(run / "sentences")
    if not files:
        return None
    per_source: dict[str, dict[str, int]] = {}
    words_all, chars_all = [], []
    for path in files:
        table = pq.read_table(path, columns=["source", "paragraphs"])
        paras = table.column("paragraphs").combine_chunks()
        n_paras = pc.list_value_length(paras).to_numpy(zero_copy_only=False)
        flat_paras = pc.list_flatten(paras)
        n_sents_per_para = pc.list_value_length(flat_paras).to_numpy(zero_copy_only=False)
        # Sentences per document: sum the per-paragraph counts over each document's paragraphs.
        bounds = np.concatenate([[0], np.cumsum(n_paras)]).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(n_sents_per_para)]).astype(np.int64)
        n_sents = cum[bounds[1:]] - cum[bounds[:-1]]
        sents = pc.list_flatten(flat_paras)
        words_all.append(word_counts(sents))
        chars_all.append(pc.utf8_length(sents).to_numpy(zero_copy_only=False).astype(np.int64))
        sources = np.asarray(table.column("source").to_pylist(), dtype=object)
        for src in sorted(set(sources.tolist())):
            sel = sources == src
            d = per_source.setdefault(src, {"documents": 0, "paragraphs": 0, "sentences": 0})
            d["documents"] += int(sel.sum())
            d["paragraphs"] += int(n_paras[sel].sum())
            d["sentences"] += int(n_sents[sel].sum())
    words = np.concatenate(words_all)
    chars = np.concatenate(chars_all)
    return {
        "per_source": dict(sorted(per_source.items())),
        "length_words": histogram(words, SENTENCE_WORD_BINS, True),
        "length_chars": histogram(chars, SENTENCE_CHAR_BINS, True),
    }


def gather_dropped(run: Path, report: dict | None) -> dict[str, Any] | None:
    """Skipped and rejected documents by reason: totals from report.json and, per source, the
    rows of RUN/rejected/*.parquet. Rows: ``{kind, reason, count, by_source: {src: n}}``."""
    files = parquet_files(run / "rejected")
    if report is None and not files:
        return None
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if report is not None:
        for kind in ("skipped", "rejected"):
            for reason, n in report.get(kind, {}).items():
                rows[(kind, reason)] = {"kind": kind, "reason": reason, "count": int(n)}
    sources: set[str] = set()
    for path in files:
        table = pq.read_table(path, columns=["source", "kind", "reason"])
        for src, kind, reason in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            row = rows.setdefault((kind, reason), {"kind": kind, "reason": reason, "count": None})
            row.setdefault("by_source", {})
            row["by_source"][src] = row["by_source"].get(src, 0) + 1
            sources.add(src)
    out = sorted(rows.values(), key=lambda r: (r["kind"], r["reason"]))
    for r in out:
        r["by_source"] = {s: r.get("by_source", {}).get(s, 0) for s in sorted(sources)}
    return {"rows": out, "sources": sorted(sources)}


def gather_vocab(run: Path) -> dict[str, Any] | None:
    """RUN/vocab/report.json plus the word rank/count curve of counts.tsv (log-spaced ranks)
    and the share of word occurrences covered by the top 1k, 10k, 100k... words."""
    report_path = run / "vocab" / "report.json"
    if not report_path.is_file():
        return None
    out: dict[str, Any] = {"report": json.loads(report_path.read_text())}
    counts_path = run / "vocab" / "counts.tsv"
    if counts_path.is_file():
        out["counts"] = rank_curve(counts_path)
    return out


def gather_instances(run: Path) -> dict[str, Any] | None:
    """Per shard directory (RUN/seq*/ with a manifest): manifest totals and builder stats, and
    :func:`sharding.inspect.inspect_dir` of the stored arrays (length histogram, NSP, masks)."""
    phases = {}
    for d in sorted(run.glob("seq*"), key=lambda p: (len(p.name), p.name)):
        manifest_path = d / "manifest.json"
        if not manifest_path.is_file():
            continue
        manifest = json.loads(manifest_path.read_text())
        summary = inspect_dir(d, examples=0)
        summary.pop("examples", None)
        phases[d.name] = {
            "seq_length": manifest["seq_length"],
            "max_predictions": manifest["max_predictions"],
            "totals": manifest["totals"],
            "stats": manifest.get("report", {}),
            "inspect": summary,
        }
    return phases or None


TRAIN_KEYS = ("loss", "mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc", "lr", "grad_norm")
SPEED_KEYS = ("sequences_per_s", "tokens_per_s")
EVAL_KEYS = ("eval_mlm_loss", "eval_mlm_acc", "eval_nsp_acc")


def gather_training(dirs: list[Path]) -> list[dict[str, Any]] | None:
    """One entry per training dir, in order, on one step axis: a dir whose first step is not
    after the previous dir's last global step is shifted to follow it (``offset``).

    Entry: ``{name, dir, offset, steps: [global step], series: {key: [value or None]},
    eval_steps, eval: {key: [...]}, summary: {key: number}}``.
    """
    out, last = [], 0
    for d in dirs:
        rows = read_jsonl(d / "metrics.jsonl")
        train = [r for r in rows if "loss" in r and "step" in r]
        evals = [r for r in rows if any(k in r for k in EVAL_KEYS) and "step" in r]
        if not train and not evals:
            continue
        first = min(r["step"] for r in train + evals)
        offset = last if first <= last else 0
        series = {k: [r.get(k) for r in train] for k in TRAIN_KEYS + SPEED_KEYS}
        summary: dict[str, Any] = {"steps": len(train)}
        if train:
            summary["first_step"] = train[0]["step"]
            summary["last_step"] = train[-1]["step"]
            for k in TRAIN_KEYS:
                if train[-1].get(k) is not None:
                    summary[f"final_{k}"] = train[-1][k]
            for k in SPEED_KEYS:
                vals = [v for v in series[k] if v is not None]
                if vals:
                    summary[f"mean_{k}"] = float(np.mean(vals))
        for k in EVAL_KEYS:
            vals = [r[k] for r in evals if r.get(k) is not None]
            if vals:
                summary[f"last_{k}"] = vals[-1]
        out.append(
            {
                "name": d.name,
                "dir": str(d),
                "offset": offset,
                "steps": [r["step"] + offset for r in train],
                "series": series,
                "eval_steps": [r["step"] + offset for r in evals],
                "eval": {k: [r.get(k) for r in evals] for k in EVAL_KEYS},
                "summary": summary,
            }
        )
        last = max(r["step"] for r in train + evals) + offset
    return out or None


def gather_finetune(dirs: list[Path]) -> list[dict[str, Any]] | None:
    """Per fine-tuning dir: its summary JSON (``*summary*.json``, numbers flattened, e.g.
    ``eval_accuracy``, ``majority_baseline_accuracy``), whether it is a random-init baseline,
    and the accuracy-like series of metrics.jsonl (keys containing ``acc`` or ``f1``) per row."""
    out = []
    for d in dirs:
        summary: dict[str, float] = {}
        random_init = False
        for path in sorted(d.glob("*summary*.json")):
            obj = json.loads(path.read_text())
            summary.update(flat_numbers(obj))
            # A run from random weights (finetune --random-init) is a baseline itself.
            random_init = random_init or (isinstance(obj, dict) and obj.get("random_init") is True)
        rows = read_jsonl(d / "metrics.jsonl") if (d / "metrics.jsonl").is_file() else []
        keys = sorted({k for r in rows for k in r if "acc" in k or "f1" in k})
        series = {k: [r.get(k) for r in rows] for k in keys}
        if summary or rows:
            out.append(
                {
                    "name": d.name,
                    "dir": str(d),
                    "random_init": random_init,
                    "summary": summary,
                    "series": series,
                }
            )
    return out or None


def gather(
    run_dir: str | Path, train_dirs: list[str] = (), finetune_dirs: list[str] = ()
) -> dict[str, Any]:
    """Every section of the report; ``missing`` lists ``(section, why)`` for skipped ones."""
    run = Path(run_dir)
    check_run_dir(run)
    for d in [*train_dirs, *finetune_dirs]:
        if not Path(d).is_dir():
            raise UserError(f"{d} is not a directory")
    report_path = run / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    vocab = gather_vocab(run)
    tpw = vocab["report"].get("tokens_per_word") if vocab else None
    trains = [Path(d) for d in train_dirs] or discover(run, ("phase1", "phase2", "train*"))
    for d in trains:
        if not (d / "metrics.jsonl").is_file():
            raise UserError(f"{d}: no metrics.jsonl (is it a bertprep train --output dir?)")
    tunes = [Path(d) for d in finetune_dirs] or discover(run, ("finetune*",))
    data = {
        "run": str(run),
        "extract": report,
        "docs": gather_docs(run, tpw),
        "sentences": gather_sentences(run),
        "dropped": gather_dropped(run, report),
        "vocab": vocab,
        "instances": gather_instances(run),
        "training": gather_training(trains),
        "finetune": gather_finetune(tunes),
    }
    why = {
        "extract": "no report.json",
        "docs": "no RUN/docs/*.parquet (extract not run)",
        "sentences": "no RUN/sentences/*.parquet (segment not run)",
        "dropped": "no report.json and no RUN/rejected",
        "vocab": "no RUN/vocab/report.json (vocab not run)",
        "instances": "no RUN/seq*/manifest.json (instances not run)",
        "training": "no training metrics (pass --train DIR, or RUN/phase1, RUN/phase2, RUN/train*)",
        "finetune": "no fine-tuning output (pass --finetune DIR, or RUN/finetune*)",
    }
    data["missing"] = [(k, v) for k, v in why.items() if data[k] is None]
    return data
