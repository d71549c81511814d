"""The report's matplotlib figures (Agg backend), one ``fig_*`` per section, and cell formatting.

Each ``fig_*`` takes one section of :func:`bertprep.report.data.gather`'s dict and returns an
open :class:`~matplotlib.figure.Figure`; :func:`save_figure` writes it as a PNG (100 dpi, no
timestamp or version metadata, so reruns are byte-identical) and closes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ground.atomic import atomic_path  # noqa: E402

PHASE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def fmt(x: Any) -> str:
    """A table cell: ints as digits, floats to 6 significant digits, None as '-'."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def bin_labels(hist: dict) -> list[str]:
    """``"lo-hi"`` per bin (inclusive integer bounds), ``"lo+"`` for the overflow bin."""
    e = hist["edges"]
    labels = [f"{a}-{b - 1}" if b - 1 > a else str(a) for a, b in zip(e, e[1:])]
    return labels + ([f"{e[-1]}+"] if hist["overflow"] else [])


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as a PNG (temporary name, then rename) and close it."""
    try:
        with atomic_path(path, mkdir=False) as tmp:
            fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)


def _bars(ax, hist: dict, title: str, xlabel: str) -> None:
    labels = bin_labels(hist)
    ax.bar(range(len(labels)), hist["counts"], color="tab:blue")
    ax.set_xticks(range(len(labels)), labels, rotation=70, fontsize=7)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")


def fig_sources(data: dict) -> Figure:
    docs, sents = data["docs"] or {}, data["sentences"] or {}
    per_docs, per_sents = docs.get("per_source", {}), sents.get("per_source", {})
    sources = sorted(set(per_docs) | set(per_sents))
    panels = [
        ("documents", [per_docs.get(s, {}).get("documents", 0) for s in sources]),
        ("sentences", [per_sents.get(s, {}).get("sentences", 0) for s in sources]),
        ("tokens (estimated)", [per_docs.get(s, {}).get("est_tokens") or 0 for s in sources]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (title, values) in zip(axes, panels):
        ax.bar(sources, values, color=PHASE_COLORS[: len(sources)] or "tab:blue")
        ax.set_title(f"{title} per source")
        for i, v in enumerate(values):
            ax.annotate(fmt(v), (i, v), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    return fig


def fig_pair(h1: dict, h2: dict, titles: tuple[str, str], xlabels) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    _bars(axes[0], h1, titles[0], xlabels[0])
    _bars(axes[1], h2, titles[1], xlabels[1])
    fig.tight_layout()
    return fig


def fig_dropped(dropped: dict) -> Figure:
    rows = dropped["rows"]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    colors = ["tab:gray" if r["kind"] == "skipped" else "tab:red" for r in rows]
    counts = [r["count"] if r["count"] is not None else sum(r["by_source"].values()) for r in rows]
    labels = [f"{r['reason']} ({r['kind']})" for r in rows]
    ax.barh(range(len(rows)), counts, color=colors)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    for i, c in enumerate(counts):
        ax.annotate(str(c), (c, i), va="center", fontsize=8)
    ax.set_xlabel("documents")
    ax.set_title("skipped (grey) and rejected (red) documents by reason")
    fig.tight_layout()
    return fig


def fig_vocab(vocab: dict) -> Figure:
    counts = vocab["counts"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].loglog(counts["ranks"], counts["rank_counts"], marker=".", linestyle="-")
    axes[0].set_xlabel("word frequency rank")
    axes[0].set_ylabel("occurrences")
    axes[0].set_title(f"word rank vs count ({counts['distinct_words']} distinct words)")
    rep = vocab["report"]
    names = ["train_word_coverage", "unk_rate", *(f"top {k} words" for k in counts["top_share"])]
    values = [rep.get("train_word_coverage") or 0, rep.get("unk_rate") or 0]
    values += list(counts["top_share"].values())
    axes[1].bar(names, values, color="tab:green")
    axes[1].set_ylim(0, 1)
    axes[1].set_title(f"coverage (tokens/word {fmt(rep.get('tokens_per_word'))})")
    axes[1].tick_params(axis="x", labelrotation=30)
    for i, v in enumerate(values):
        axes[1].annotate(fmt(v), (i, v), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    return fig


def fig_instances(instances: dict) -> Figure:
    names = list(instances)
    fig, axes = plt.subplots(2, len(names), figsize=(6 * len(names), 7), squeeze=False)
    for col, name in enumerate(names):
        tr = instances[name]["inspect"]["training"]
        hist = tr["length_histogram"]
        ax = axes[0][col]
        ax.bar(range(len(hist)), list(hist.values()), color=PHASE_COLORS[col % 5])
        ax.set_xticks(range(len(hist)), list(hist), rotation=70, fontsize=7)
        ax.set_yscale("log")
        ax.set_title(f"{name}: training instance lengths (tokens)")
        split = tr.get("mask_split", {})
        labels = ["NSP random next", *(f"mask {k}" for k in split)]
        values = [tr["nsp_random_fraction"], *split.values()]
        ax = axes[1][col]
        ax.bar(labels, values, color="tab:purple")
        ax.set_ylim(0, 1)
        ax.set_title(f"{name}: NSP and masking (mean masked {fmt(tr.get('mean_masked'))})")
        for i, v in enumerate(values):
            ax.annotate(fmt(round(v, 4)), (i, v), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    return fig


def fig_training(training: list[dict]) -> Figure:
    panels = [
        ("loss", ("loss", "mlm_loss", "nsp_loss"), ("eval_mlm_loss",)),
        ("accuracy", ("mlm_acc", "nsp_acc"), ("eval_mlm_acc", "eval_nsp_acc")),
        ("throughput (tokens/s)", ("tokens_per_s",), ()),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    styles = ("-", "--", ":")
    for ax, (title, keys, eval_keys) in zip(axes, panels):
        for i, run in enumerate(training):
            color = PHASE_COLORS[i % 5]
            for style, k in zip(styles, keys):
                pts = [(s, v) for s, v in zip(run["steps"], run["series"][k]) if v is not None]
                if pts:
                    ax.plot(*zip(*pts), linestyle=style, color=color, label=f"{run['name']} {k}")
            for marker, k in zip("ox", eval_keys):
                ev = run["eval"][k]
                pts = [(s, v) for s, v in zip(run["eval_steps"], ev) if v is not None]
                if pts:
                    ax.plot(*zip(*pts), marker, color=color, label=f"{run['name']} {k}")
            if run["offset"]:
                ax.axvline(run["offset"], color="gray", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel("step (phases one after another)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _is_baseline(key: str) -> bool:
    return any(w in key for w in ("baseline", "majority", "random"))


def finetune_items(finetune: list[dict]) -> list[tuple[str, float]]:
    """``(label, value)`` of the accuracy, F1 and baseline numbers of every summary; a
    random-init run's label says so (and is drawn as a baseline)."""
    return [
        (f"{ft['name']}{' (random init)' if ft['random_init'] else ''}\n{k}", v)
        for ft in finetune
        for k, v in ft["summary"].items()
        if "acc" in k or "f1" in k or _is_baseline(k)
    ]


def fig_finetune(finetune: list[dict]) -> Figure:
    """Bars of the summaries' accuracies (baselines grey); without a summary, the accuracy
    series of metrics.jsonl per logged row."""
    items = finetune_items(finetune)
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(items)), 4.6))
    if items:
        colors = ["tab:gray" if _is_baseline(n) else "tab:cyan" for n, _ in items]
        ax.bar([n for n, _ in items], [v for _, v in items], color=colors)
        for i, (_, v) in enumerate(items):
            ax.annotate(fmt(v), (i, v), ha="center", va="bottom", fontsize=8)
        ax.tick_params(axis="x", labelsize=7, labelrotation=20)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.set_title("fine-tuning accuracy (cyan) vs baselines (grey)")
    else:
        for ft in finetune:
            for k, values in ft["series"].items():
                pts = [(i, v) for i, v in enumerate(values, 1) if v is not None]
                if pts:
                    ax.plot(*zip(*pts), marker=".", label=f"{ft['name']} {k}")
        ax.set_xlabel("logged row")
        ax.legend(fontsize=7)
        ax.set_title("fine-tuning metrics")
    fig.tight_layout()
    return fig
