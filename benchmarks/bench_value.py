"""Is the model worth having? Build -> pretrain N minutes -> GLUE against tuned random init.

    .venv/bin/python benchmarks/bench_value.py --minutes 10 [--work bench-value] [--seeds 3]

1. Data (once per --work directory, reused by every N): the shared corpora (``wikitext-en``,
   50 MB of WikiExtractor output, converted to JSON Lines here, and the 17 Gutenberg books)
   through ``bertprep build`` into MLM-only unmasked seq-128 shards (``--no-nsp --unmasked
   --dupe-factor 1``: the loader masks afresh every epoch).
2. Pretraining: ``bertprep train --recipe cpu`` for N minutes of wall time on this machine. A
   short calibration run measures seconds per step first, so ``--total-steps`` makes the LR
   schedule end at N minutes; ``--time-budget`` is the hard stop. Eval MLM loss and accuracy on
   the held-out shards are printed beside the unigram level of the same shards
   (:mod:`pretrain.unigram`: what a context-blind model scores).
3. Fine-tuning: ``bertprep finetune --compare-random`` on GLUE SST-2 (full train set), MRPC and
   CoLA as distributed: pretrained and random-init arms, each at its own best LR of the same
   grid, chosen on a part of train held out for that; paired seeds; reported on dev.
4. A table (markdown, also written to WORK/value-N.md and .json) with the targets of the
   "pretraining that pays" issue and, labelled as published and not comparable in compute,
   google-research/bert's BERT-Tiny and BERT-Mini SST-2 dev figures.

Timing is wall time: run nothing else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
PUBLISHED_SST2 = {"BERT-Tiny (2/128)": 83.2, "BERT-Mini (4/256)": 85.9}  # google-research/bert
TASKS = ("sst2", "mrpc", "cola")
# Fine-tuning grid and epochs per task, the same for both arms. SST-2 (60k rows): 2 epochs;
# MRPC and CoLA (3.7k and 8.5k rows) need more epochs and lower LRs for a 2-layer model to leave
# the majority class (at 10 min, 1e-3/3e-3 x 2 epochs left both arms there).
TASK_GRID = {"sst2": ("3e-4,1e-3", 2), "mrpc": ("1e-4,3e-4,1e-3", 5), "cola": ("1e-4,3e-4,1e-3", 5)}
GLUE_DIRS = {"sst2": "SST-2", "mrpc": "MRPC", "cola": "CoLA"}
_DOC = re.compile(r'<doc id="(\d+)"[^>]*>\n(.*?)</doc>', re.S)


def wikiextractor_docs(text: str):
    """``(id, body)`` of each ``<doc>`` of a WikiExtractor output file; the title line that
    opens every body is dropped, empty lines too (redirect stubs come out empty)."""
    for m in _DOC.finditer(text):
        lines = m.group(2).split("\n")[1:]
        yield m.group(1), "\n".join(x for x in lines if x.strip())


def prepare_corpus(src: Path, dest: Path) -> int:
    """WikiExtractor files under ``src`` -> one JSON Lines file (``text`` field); returns the
    documents written. Empty bodies are left for the pipeline to reject and count."""
    if dest.is_file():
        return sum(1 for _ in dest.open())
    tmp, n = dest.with_suffix(".tmp"), 0
    with tmp.open("w", encoding="utf-8") as out:
        for path in sorted(src.glob("*/wiki_*")):
            for doc_id, body in wikiextractor_docs(path.read_text(encoding="utf-8")):
                out.write(json.dumps({"id": doc_id, "text": body}) + "\n")
                n += 1
    tmp.rename(dest)
    return n


def bertprep(*argv: str) -> None:
    from bertprep.cli import main

    print("$ bertprep " + " ".join(argv), flush=True)
    if main(list(argv)) != 0:
        sys.exit(f"bench_value: bertprep {argv[0]} failed")


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def build(work: Path, vocab_size: int) -> Path:
    """The shards (built once; ``build`` skips what is complete)."""
    corpus = work / "wikitext-en.jsonl"
    print(f"corpus: {prepare_corpus(SHARED / 'wikitext-en', corpus)} WikiExtractor documents")
    run = work / "data"
    bertprep(
        "build", "--corpus", str(corpus), "--books", str(SHARED / "books" / "gutenberg"),
        "--output", str(run), "--vocab-size", str(vocab_size), "--max-seq-length", "128",
        "--no-nsp", "--unmasked", "--dupe-factor", "1", "--direct_num_workers", "2",
    )  # fmt: skip
    return run


def _batch(args) -> int:
    from pretrain.recipes import RECIPES

    return RECIPES[args.recipe][1].global_batch


def seconds_per_step(run: Path, out: Path, args) -> float:
    """Median seconds per optimizer step of the recipe on this machine (steps 6..40)."""
    shutil.rmtree(out, ignore_errors=True)
    bertprep(
        "train", "--data", str(run / "seq128"), "--model", args.model, "--recipe", args.recipe,
        "--threads", str(args.threads), "--output", str(out), "--total-steps", "40",
        "--checkpoint-every", "1000", "--keep-last", "1", *speed_flags(args),
    )  # fmt: skip
    rows = [r for r in _rows(out / "metrics.jsonl") if "loss" in r][5:]
    return statistics.median(_batch(args) / r["sequences_per_s"] for r in rows)


def speed_flags(args) -> list[str]:
    """``--precision`` and ``--compile`` for ``bertprep train`` (benchmarks/bench_train_cpu.py:
    bf16 autocast + torch.compile is 1.47x fp32 eager for tiny on this AVX512-BF16 CPU)."""
    return ["--precision", args.precision] + (["--compile"] if args.compile else [])


def pretrain(run: Path, work: Path, args) -> tuple[Path, dict]:
    """Train N minutes; returns (output dir, facts for the table)."""
    out = work / f"pretrain-{args.minutes}min"
    facts_file = out / "bench-facts.json"
    if args.reuse_pretraining and facts_file.is_file():  # e.g. after a failed fine-tuning step
        facts = json.loads(facts_file.read_text())
    else:
        per_step = seconds_per_step(run, work / "calibration", args)
        budget = args.minutes * 60
        # Start-up, the 5 evaluations and the final one are not in the per-step figure: 8%.
        total = max(10, int(0.92 * budget / per_step))
        print(f"calibration: {per_step:.3f} s/step -> --total-steps {total} for {args.minutes} min")
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        bertprep(
            "train", "--data", str(run / "seq128"), "--model", args.model, "--recipe",
            args.recipe, "--threads", str(args.threads), "--output", str(out), "--total-steps",
            str(total), "--time-budget", str(budget), "--eval-every", str(max(1, total // 5)),
            "--checkpoint-every", str(total), "--keep-last", "1", *speed_flags(args),
        )  # fmt: skip
        facts = {"seconds_per_step": per_step, "planned_steps": total,
                 "train_wall_s": time.perf_counter() - t0}  # fmt: skip
        facts_file.write_text(json.dumps(facts) + "\n")
    rows = _rows(out / "metrics.jsonl")
    steps = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_mlm_loss" in r]
    facts.update(steps=steps[-1]["step"], sequences=steps[-1]["step"] * _batch(args),
                 eval=evals[-1] if evals else {}, curve=evals)  # fmt: skip
    facts.update(unigram(run))
    return out, facts


def unigram(run: Path) -> dict:
    from pretrain.unigram import unigram_level
    from sharding.reader import ShardSet
    from sharding.vocab import load_vocab

    shards = ShardSet.open(run / "seq128")
    vocab = load_vocab(shards.directory / "vocab.txt")
    return unigram_level(shards, len(vocab.tokens), (vocab.cls, vocab.sep, vocab.pad)).to_dict()


def finetune(model: Path, work: Path, task: str, args) -> dict:
    """Both arms on one GLUE task. The random-init runs depend on neither N nor the pretrained
    weights, so they are kept in WORK/random-TASK-eE.json and reused by later N (``bertprep
    finetune --reuse-random`` checks that rows, architecture and hyperparameters are the same)."""
    grid, epochs = TASK_GRID[task]
    grid, epochs = args.lr_grid or grid, args.epochs or epochs
    out = work / f"glue-{args.minutes}min" / task
    cache = work / f"random-{task}-e{epochs}.json"
    bertprep(
        "finetune", "--model", str(model), "--task", task,
        "--glue-dir", str(SHARED / "glue" / GLUE_DIRS[task]), "--output", str(out),
        "--compare-random", "--seeds", str(args.seeds), "--lr", grid,
        "--epochs", str(epochs), "--threads", str(args.threads),
        *(["--reuse-random", str(cache)] if cache.is_file() else []),
    )  # fmt: skip
    shutil.copyfile(out / "results.json", cache)  # now holds every random run of this grid
    return json.loads((out / "results.json").read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, required=True, help="pretraining wall time")
    p.add_argument("--work", default="bench-value", help="work directory (data reused)")
    p.add_argument("--model", default="tiny")
    p.add_argument("--recipe", default="cpu")
    p.add_argument("--vocab-size", type=int, default=16000)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lr-grid", help="fine-tuning LRs, both arms, every task (default: TASK_GRID)")
    p.add_argument("--epochs", type=int, help="fine-tuning epochs, every task (default: TASK_GRID)")
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16"), help="pretraining")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="pretraining eager")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--reuse-pretraining",
        action="store_true",
        help="keep WORK/pretrain-Nmin of an earlier run of the same N (fine-tuning again)",
    )
    args = p.parse_args(argv)
    if not SHARED.is_dir():
        sys.exit(f"bench_value: needs the shared corpora at {SHARED}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run = build(work, args.vocab_size)
    out, facts = pretrain(run, work, args)
    model = work / f"export-{args.minutes}min"
    bertprep("export", str(out), str(model), "--vocab-dir", str(run / "vocab"), "--overwrite")
    results = {t: finetune(model, work, t, args) for t in args.tasks.split(",")}
    report = {"minutes": args.minutes, "pretraining": facts, "glue": results, "args": vars(args)}
    (work / f"value-{args.minutes}min.json").write_text(json.dumps(report, indent=1) + "\n")
    text = table(report)
    (work / f"value-{args.minutes}min.md").write_text(text)
    print(text)
    return 0


def table(report: dict) -> str:
    """The benchmark's markdown table (see the module docstring)."""
    from pretrain.compare_report import markdown  # the fine-tuning protocol's own tables

    f = report["pretraining"]
    ev = f.get("eval", {})
    lines = [
        f"## bertprep value benchmark: {report['minutes']} min of pretraining",
        "",
        f"pretraining: {f['steps']} steps ({f['sequences']} sequences) in "
        f"{f['train_wall_s'] / 60:.1f} min wall ({report['args'].get('precision', 'fp32')}"
        f"{', torch.compile' if report['args'].get('compile') else ''}); held-out MLM loss "
        f"{ev.get('eval_mlm_loss', float('nan')):.3f} / accuracy "
        f"{ev.get('eval_mlm_acc', float('nan')):.3f} (unigram level {f['unigram_ce']:.3f} / "
        f"{f['unigram_acc']:.3f}; target accuracy >= 0.30)",
        "",
    ]
    for task, res in report["glue"].items():
        lines += [f"### {task}", "", markdown(res), ""]
    lines.append(
        "Published, not comparable in compute (google-research/bert, SST-2 dev): "
        + ", ".join(f"{k} {v}" for k, v in PUBLISHED_SST2.items())
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
