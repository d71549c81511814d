"""Draw the report: PNG figures (matplotlib, Agg) and an HTML page with a table per figure.

Input is :func:`pipeline.report_data.gather`'s dict; every number in a table comes from it
unchanged (integers as digits, floats with 6 significant digits). Files are written to a
temporary name and renamed; PNGs carry no timestamp or version, so reruns are byte-identical.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

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


def table(table_id: str, header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table with ``id=table_id``, one ``<th>`` row then one row per entry."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def bin_labels(hist: dict) -> list[str]:
    """``"lo-hi"`` per bin (inclusive integer bounds), ``"lo+"`` for the overflow bin."""
    e = hist["edges"]
    labels = [f"{a}-{b - 1}" if b - 1 > a else str(a) for a, b in zip(e, e[1:])]
    return labels + ([f"{e[-1]}+"] if hist["overflow"] else [])


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)


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


def _hist_rows(hist: dict) -> list[list[Any]]:
    return [[lab, c] for lab, c in zip(bin_labels(hist), hist["counts"])]


def _length_section(section: dict, what: str, noun: str, fig_dir: Path) -> tuple:
    """Word and character length histograms of documents or sentences, figure and tables."""
    words, chars = section["length_words"], section["length_chars"]
    titles = (f"{noun} length (words)", f"{noun} length (characters)")
    figure = f"{noun}_lengths.png"
    _save(fig_pair(words, chars, titles, ("words", "characters")), fig_dir / figure)
    tables = [
        table(f"t-{what}len-words", ["words", f"{noun}s"], _hist_rows(words)),
        table(f"t-{what}len-chars", ["chars", f"{noun}s"], _hist_rows(chars)),
    ]
    return (f"{noun.capitalize()} lengths", figure, tables)


def sections(data: dict, fig_dir: Path) -> list[tuple[str, str | None, list[str]]]:
    """``(title, figure file name or None, [HTML tables])`` per section present in ``data``;
    draws each figure into ``fig_dir``."""
    out = []
    docs, sents = data["docs"], data["sentences"]
    if docs or sents:
        _save(fig_sources(data), fig_dir / "sources.png")
        pd, ps = (docs or {}).get("per_source", {}), (sents or {}).get("per_source", {})
        rows = [
            [s, pd.get(s, {}).get("documents"), pd.get(s, {}).get("words")]
            + [pd.get(s, {}).get("chars"), ps.get(s, {}).get("paragraphs")]
            + [ps.get(s, {}).get("sentences"), pd.get(s, {}).get("est_tokens")]
            for s in sorted(set(pd) | set(ps))
        ]
        head = ["source", "documents", "words", "chars", "paragraphs", "sentences"]
        out.append(
            (
                "Documents, sentences and tokens per source",
                "sources.png",
                [table("t-sources", [*head, "tokens (estimated)"], rows)],
            )
        )
    for key, what, noun in (("docs", "doc", "document"), ("sentences", "sent", "sentence")):
        if data[key]:
            out.append(_length_section(data[key], what, noun, fig_dir))
    if data["extract"]:
        ex = data["extract"]
        rows = [["docs_in", ex.get("docs_in")], ["docs_out", ex.get("docs_out")]]
        rows += [
            [f"{s} docs_{k}", c[f"docs_{k}"]]
            for s, c in sorted(ex.get("by_source", {}).items())
            for k in ("in", "out")
        ]
        out.append(("Extraction", None, [table("t-extract", ["count", "value"], rows)]))
    dropped = data["dropped"]
    if dropped and not dropped["rows"]:
        out.append(("Skipped and rejected documents", None, ["<p>No document was dropped.</p>"]))
    if dropped and dropped["rows"]:
        _save(fig_dropped(dropped), fig_dir / "dropped.png")
        rows = [
            [r["kind"], r["reason"], r["count"], *(r["by_source"][s] for s in dropped["sources"])]
            for r in dropped["rows"]
        ]
        head = ["kind", "reason", "documents (report.json)", *dropped["sources"]]
        out.append(
            ("Skipped and rejected documents", "dropped.png", [table("t-dropped", head, rows)])
        )
    vocab = data["vocab"]
    if vocab:
        rows = [[k, v] for k, v in sorted(vocab["report"].items()) if not isinstance(v, dict)]
        tables = [table("t-vocab", ["vocab report", "value"], rows)]
        if "counts" in vocab:
            c = vocab["counts"]
            rows = [["distinct words", c["distinct_words"]], ["occurrences", c["occurrences"]]]
            rows += [
                [f"share of occurrences in top {k} words", v] for k, v in c["top_share"].items()
            ]
            tables.append(table("t-vocab-counts", ["counts.tsv", "value"], rows))
            _save(fig_vocab(vocab), fig_dir / "vocab.png")
        out.append(("Vocabulary coverage", "vocab.png" if "counts" in vocab else None, tables))
    if data["instances"]:
        out.append(_instances_section(data["instances"], fig_dir))
    if data["training"]:
        _save(fig_training(data["training"]), fig_dir / "training.png")
        keys = sorted({k for r in data["training"] for k in r["summary"]})
        rows = [[k, *(r["summary"].get(k) for r in data["training"])] for k in keys]
        rows.append(["step offset", *(r["offset"] for r in data["training"])])
        head = ["metric", *(r["name"] for r in data["training"])]
        out.append(("Training", "training.png", [table("t-training", head, rows)]))
    if data["finetune"]:
        _save(fig_finetune(data["finetune"]), fig_dir / "finetune.png")
        rows = [[f["name"], k, v] for f in data["finetune"] for k, v in f["summary"].items()]
        out.append(
            ("Fine-tuning", "finetune.png", [table("t-finetune", ["run", "metric", "value"], rows)])
        )
    return out


def _instances_section(instances: dict, fig_dir: Path) -> tuple[str, str, list[str]]:
    _save(fig_instances(instances), fig_dir / "instances.png")
    names = list(instances)
    ins = [instances[n]["inspect"] for n in names]
    rows = [
        ["seq_length", *(instances[n]["seq_length"] for n in names)],
        ["max_predictions", *(instances[n]["max_predictions"] for n in names)],
        ["training instances", *(instances[n]["totals"]["training"] for n in names)],
        ["validation instances", *(instances[n]["totals"]["validation"] for n in names)],
    ]
    for split in ("training", "validation"):
        for k in ("mean_length", "nsp_random_fraction", "mean_masked"):
            rows.append([f"{split} {k}", *(i[split].get(k) for i in ins)])
        for k in ("mask", "random", "unchanged"):
            rows.append(
                [f"{split} mask_split {k}", *(i[split].get("mask_split", {}).get(k) for i in ins)]
            )
    stat_keys = sorted({k for n in names for k in instances[n]["stats"]})
    rows += [[f"builder {k}", *(instances[n]["stats"].get(k) for n in names)] for k in stat_keys]
    tables = [table("t-instances", ["statistic", *names], rows)]
    for n, i in zip(names, ins):
        hist = i["training"]["length_histogram"]
        tables.append(
            table(
                f"t-inslen-{n}",
                ["tokens", f"{n} training instances"],
                [[k, v] for k, v in hist.items()],
            )
        )
    return ("Instances (NSP and masking per phase)", "instances.png", tables)


STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:auto}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 8px;"
    "text-align:right}img{max-width:100%}.note{color:#a60}"
)


def write_report(data: dict, out_dir: str | Path) -> Path:
    """Figures into ``out_dir/figures/``, the page into ``out_dir/report.html``; returns it."""
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>bertprep run report: {html.escape(data['run'])}</h1>"]
    if data["docs"] and data["docs"]["tokens_per_word"]:
        parts.append(
            "<p>Tokens per source are estimated: BERT pre-tokenised words x the vocab's held-out "
            f"tokens per word ({fmt(data['docs']['tokens_per_word'])}). Instance token counts "
            "(builder tokens) are exact.</p>"
        )
    for title, figure, tables in sections(data, fig_dir):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if figure:
            parts.append(f'<img src="figures/{figure}" alt="{html.escape(title)}">')
        parts.extend(tables)
    for section, why in data["missing"]:
        parts.append(f'<p class="note">Skipped {html.escape(section)}: {html.escape(why)}</p>')
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>bertprep report</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    path = out_dir / "report.html"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
