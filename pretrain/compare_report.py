"""What the fine-tuning protocol prints and writes besides ``results.json``: progress lines, the
``summary.md`` tables, and a single run's ``metrics.jsonl`` / ``summary.json`` (the files
``bertprep finetune`` always wrote, kept for its callers: the demo and the HTML report).

Numbers are fractions (accuracy 0.8123, not 81.23%); ``±`` is the sample standard deviation
over seeds (n - 1), absent with one seed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ground.atomic import write_text
from pretrain.finetune_metrics import LABELS, mean_std


def reported_metrics(plan) -> tuple[str, ...]:
    """The metrics shown in tables: the plan's selection metric first, then the task's others
    (custom files: accuracy and macro F1)."""
    task = plan.source.task
    others = task.reported if task is not None else ("accuracy", "macro_f1")
    return tuple(dict.fromkeys((plan.metric, *others)))


def _name(metric: str) -> str:
    return LABELS.get(metric, metric)


def print_epoch(metric: str):
    """A per-epoch progress printer for :func:`pretrain.finetune_runs.run_one`."""

    def show(row: dict) -> None:
        sel, dev = row["select"], row["dev"]
        print(
            f"  epoch {row['epoch']}: train loss {row['train_loss']:.4f} | selection "
            f"{_name(metric)} {sel[metric]:.4f} loss {sel['loss']:.4f} | dev {_name(metric)} "
            f"{dev[metric]:.4f} loss {dev['loss']:.4f}",
            flush=True,
        )

    return show


def run_line(record: dict, metric: str, epochs: int) -> str:
    """One progress line per run: arm, LR, seed, chosen epoch, selection and dev metric, time."""
    m = _name(metric)
    return (
        f"{record['arm']:<10} lr {record['lr']:.0e} seed {record['seed']}: epoch "
        f"{record['best_epoch']}/{epochs} chosen, selection {m} {record['select']:.4f}, "
        f"dev {m} {record['dev']:.4f}, {record['seconds']:.1f} s"
    )


def _stats(s: dict) -> str:
    std = f" ± {s['std']:.4f}" if s["std"] is not None else ""
    return f"{s['mean']:.4f}{std}"


def _chosen(c: dict) -> dict:
    return next(g for g in c["by_lr"] if g["lr"] == c["lr"])


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def _arm_notes(results: dict) -> list[str]:
    """What trains in the frozen arm / under --freeze-encoder (one line, or none)."""
    if results["protocol"].get("freeze_encoder"):
        note = "--freeze-encoder: in every arm only the pooler and classifier train."
    elif "frozen" in results["choice"]:
        note = (
            "Arm frozen: the pretrained encoder with its embeddings and layers frozen, only the "
            "pooler and classifier train; arm pretrained: everything trains."
        )
    else:
        return []
    return ["", note]


def _pair_lines(key: str, pair: dict, choice: dict, m: str) -> list[str]:
    """The paired difference of arms ``a-b`` (``key``): a summary line and a row per seed."""
    a, b = key.split("-")
    lines = [
        "",
        f"Paired difference, {a} - {b}, dev {m} at the same seed (each arm at its chosen LR "
        f"and epochs): {_stats(pair)} over {pair['n']} seeds, positive at {pair['positive']} of "
        f"{pair['n']}.",
        "",
        f"| seed | {a} (epoch) | {b} (epoch) | difference |",
        "|---|---|---|---|",
    ]
    ra, rb = choice[a]["runs"], choice[b]["runs"]
    for seed, diff in pair["by_seed"].items():
        lines.append(
            f"| {seed} | {ra[seed]['dev']:.4f} ({ra[seed]['epoch']}) | "
            f"{rb[seed]['dev']:.4f} ({rb[seed]['epoch']}) | {_signed(diff)} |"
        )
    return lines


def markdown(results: dict) -> str:
    """``summary.md``: chosen LR and dev metrics per arm, what a frozen arm trains, the paired
    differences per seed (each pair of arms that ran), the majority-class baseline, and the LR
    grid's selection means."""
    metric, reported = results["metric"], results["reported"]
    m, d, p = _name(metric), results["data"], results["protocol"]
    rows, choice = d["rows"], results["choice"]
    title = results["task"] or Path(d["train_file"]).name
    held = "held out of the training file" + (", which also gave dev" if d["eval_fraction"] else "")
    if d.get("split_by"):  # e.g. SQuAD: whole articles go to one set
        held += f", split by {d['split_by']}"
    unit = d.get("unit", "rows")
    lines = [
        f"# Fine-tuning: {title}",
        "",
        f"Model `{results['model']}`. {unit.capitalize()}: {rows['train']} train, "
        f"{rows['select']} selection "
        f"({held}; split seed {d['split_seed']}), {rows['dev']} dev. LRs "
        f"{', '.join(f'{lr:g}' for lr in p['lrs'])} x seeds {', '.join(map(str, p['seeds']))}; "
        f"{p['epochs']} epochs, batch {p['batch_size']}. Chosen on the selection rows: the epoch "
        f"of each run, the LR of each arm (mean {m} over seeds). Reported: dev at those choices.",
        "",
        "| arm | chosen LR | "
        + " | ".join(f"dev {_name(r)} (mean ± std)" for r in reported)
        + f" | dev {m} min..max | seeds | selection {m} (mean) |",
        "|---" * (len(reported) + 5) + "|",
    ]
    for arm, c in choice.items():
        cells = []
        for r in reported:
            vals = [run[f"dev_{r}"] for run in c["runs"].values() if f"dev_{r}" in run]
            cells.append(_stats(mean_std(vals)))
        s = c["dev"]
        lines.append(
            f"| {arm} | {c['lr']:g} | {' | '.join(cells)} | {s['min']:.4f}..{s['max']:.4f} | "
            f"{s['n']} | {_chosen(c)['select']:.4f} |"
        )
    lines += _arm_notes(results)
    pairs = results.get("pairs")
    if pairs is None:  # results.json written before "pairs" existed
        pairs = {"pretrained-random": results["paired"]} if results.get("paired") else {}
    for key, pair in pairs.items():
        lines += _pair_lines(key, pair, choice, m)
    maj = results["majority"]
    if maj:  # a constant predictor: classification only
        base = ", ".join(f"{_name(r)} {maj['dev'][r]:.4f}" for r in reported if r in maj["dev"])
        label = maj["label"]
        lines += ["", f"Majority class (label {label!r} of the training rows) on dev: {base}."]
    lines += [
        "",
        f"LR grid, mean selection {m} over seeds (* = chosen):",
        "",
        "| arm | " + " | ".join(f"{lr:g}" for lr in p["lrs"]) + " |",
        "|---" * (len(p["lrs"]) + 1) + "|",
    ]
    for arm, c in choice.items():
        cells = [f"{g['select']:.4f}" + ("*" if g["lr"] == c["lr"] else "") for g in c["by_lr"]]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    n = len(results["runs"])
    secs = sum(r["seconds"] for r in results["runs"])
    lines += [
        "",
        f"{n} runs, {secs:.0f} s of training and evaluation ({secs / n:.1f} s per run, "
        f"{results['torch_threads']} torch threads on {results['device']}).",
        "",
    ]
    return "\n".join(lines)


def write_single_run_files(out: Path, results: dict) -> None:
    """A single run's ``metrics.jsonl`` (one row per epoch: train loss and accuracy,
    ``select_*`` and ``eval_*`` metrics; eval = dev) and ``summary.json`` (``eval_*`` at the
    epoch chosen on the selection rows, the majority-class baseline, sizes, hyperparameters)."""
    (run,) = results["runs"]
    flat = []
    for e in run["epochs"]:
        row = {k: v for k, v in e.items() if k not in ("select", "dev")}
        row.update({f"select_{k}": v for k, v in e["select"].items()})
        row.update({f"eval_{k}": v for k, v in e["dev"].items()})
        flat.append(row)
    write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in flat))
    best = flat[run["best_epoch"] - 1]
    d, p = results["data"], results["protocol"]
    maj = results["majority"] or {}
    summary = {
        **{k: v for k, v in best.items() if k.startswith(("eval_", "select_"))},
        "best_epoch": run["best_epoch"],
        "selected_on": f"select_{results['metric']} (rows held out of the training file)",
        "majority_baseline_accuracy": maj.get("dev", {}).get("accuracy"),  # None: no baseline
        "majority_label": maj.get("label"),
        "labels": results["labels"],
        "num_train": d["rows"]["train"],
        "num_select": d["rows"]["select"],
        "num_eval": d["rows"]["dev"],
        "skipped": d["skipped"],
        "random_init": run["arm"] == "random",
        "freeze_encoder": p["freeze_encoder"],
        "model": results["model"],
        "hyperparameters": {
            "lr": run["lr"],
            "seed": run["seed"],
            "split_seed": d["split_seed"],
            "select_fraction": d["select_fraction"],
            "eval_fraction": d["eval_fraction"],
            **{
                k: p[k]
                for k in (
                    "batch_size",
                    "epochs",
                    "warmup",
                    "weight_decay",
                    "max_seq_length",
                    "group_by_length",
                )
            },
        },
        "best_model_dir": "best",  # relative to --output: outputs do not depend on where they are
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
