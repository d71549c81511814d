"""Assemble the report's HTML page: a section per part of the run, a figure and tables each.

Input is :func:`bertprep.report.data.gather`'s dict; every number in a table comes from it
unchanged (integers as digits, floats with 6 significant digits). Figures come from
:mod:`bertprep.report.figures`. Files are written to a temporary name and renamed; PNGs carry
no timestamp or version, so reruns are byte-identical.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from bertprep.report.figures import (
    bin_labels,
    fig_dropped,
    fig_finetune,
    fig_instances,
    fig_pair,
    fig_sources,
    fig_training,
    fig_vocab,
    fmt,
    save_figure,
)
from ground.atomic import write_text


def table(table_id: str, header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table with ``id=table_id``, one ``<th>`` row then one row per entry."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _hist_rows(hist: dict) -> list[list[Any]]:
    return [[lab, c] for lab, c in zip(bin_labels(hist), hist["counts"])]


def _length_section(section: dict, what: str, noun: str, fig_dir: Path) -> tuple:
    """Word and character length histograms of documents or sentences, figure and tables."""
    words, chars = section["length_words"], section["length_chars"]
    titles = (f"{noun} length (words)", f"{noun} length (characters)")
    figure = f"{noun}_lengths.png"
    save_figure(fig_pair(words, chars, titles, ("words", "characters")), fig_dir / figure)
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
        save_figure(fig_sources(data), fig_dir / "sources.png")
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
        save_figure(fig_dropped(dropped), fig_dir / "dropped.png")
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
            save_figure(fig_vocab(vocab), fig_dir / "vocab.png")
        out.append(("Vocabulary coverage", "vocab.png" if "counts" in vocab else None, tables))
    if data["instances"]:
        out.append(_instances_section(data["instances"], fig_dir))
    if data["training"]:
        save_figure(fig_training(data["training"]), fig_dir / "training.png")
        keys = sorted({k for r in data["training"] for k in r["summary"]})
        rows = [[k, *(r["summary"].get(k) for r in data["training"])] for k in keys]
        rows.append(["step offset", *(r["offset"] for r in data["training"])])
        head = ["metric", *(r["name"] for r in data["training"])]
        out.append(("Training", "training.png", [table("t-training", head, rows)]))
    if data["finetune"]:
        save_figure(fig_finetune(data["finetune"]), fig_dir / "finetune.png")
        rows = [[f["name"], k, v] for f in data["finetune"] for k, v in f["summary"].items()]
        out.append(
            ("Fine-tuning", "finetune.png", [table("t-finetune", ["run", "metric", "value"], rows)])
        )
    return out


def _instances_section(instances: dict, fig_dir: Path) -> tuple[str, str, list[str]]:
    save_figure(fig_instances(instances), fig_dir / "instances.png")
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
    write_text(path, page)
    return path
