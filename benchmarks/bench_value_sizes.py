"""Where pretraining pays: pretrained vs tuned random init on SST-2 with fewer training rows.

``bench_value.py`` fine-tunes on SST-2's full 67,349 training rows, where a 2-layer model from
random weights already reaches ~0.81 and a short pretraining buys little. Users with a small
labelled set are in another regime. This script takes the exported models of earlier
``bench_value.py --minutes N`` runs (WORK/export-Nmin) and fine-tunes each, with the same
protocol (both arms, each at its own LR chosen on rows held out of train, paired seeds, dev
reported), on seeded random samples of K SST-2 training rows; dev is GLUE's full dev set.

    .venv/bin/python benchmarks/bench_value_sizes.py --work /work/exp/bv --minutes 10,30,60 \\
        --rows 500,2000,8000

Writes WORK/sizes/K/N/results.json and prints one markdown table. Random-init runs depend on
neither N nor the pretrained weights: they run once per K and are reused (``--reuse-random``,
which checks rows, architecture and hyperparameters).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "corpora" / "glue" / "SST-2"


def sample_rows(k: int, dest: Path, seed: int = 0) -> Path:
    """K rows of SST-2 train.tsv drawn without replacement (``random.Random(seed)``), header
    kept, in file order."""
    with open(SST2 / "train.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, body = rows[0], rows[1:]
    keep = sorted(random.Random(seed).sample(range(len(body)), k))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
        w.writerows([header] + [body[i] for i in keep])
    return dest


def main(argv: list[str] | None = None) -> int:
    from bertprep.cli import main as bertprep

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", required=True, help="bench_value.py's work directory")
    p.add_argument("--minutes", default="10,30,60", help="which WORK/export-Nmin to use")
    p.add_argument("--rows", default="500,2000,8000", help="training rows per sample")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lr", default="3e-4,1e-3,3e-3")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    work = Path(args.work)
    table = [
        "| train rows | pretraining | pretrained | random init | paired difference | "
        "seeds positive |",
        "|---|---|---|---|---|---|",
    ]
    for k in (int(x) for x in args.rows.split(",")):
        train = sample_rows(k, work / "sizes" / f"sst2-train-{k}.tsv")
        cache = work / "sizes" / f"random-{k}.json"
        for n in (float(x) for x in args.minutes.split(",")):
            model = work / f"export-{n}min"
            if not model.is_dir():
                sys.exit(f"bench_value_sizes: no {model}: run bench_value.py --minutes {n} first")
            out = work / "sizes" / str(k) / f"{n}min"
            rc = bertprep(
                ["finetune", "--model", str(model), "--task", "sst2", "--train", str(train),
                 "--eval", str(SST2 / "dev.tsv"), "--output", str(out), "--compare-random",
                 "--seeds", str(args.seeds), "--lr", args.lr, "--epochs", str(args.epochs),
                 "--threads", str(args.threads),
                 *(["--reuse-random", str(cache)] if cache.is_file() else [])]
            )  # fmt: skip
            if rc:
                return rc
            shutil.copyfile(out / "results.json", cache)
            res = json.loads((out / "results.json").read_text())
            table.append(row(k, n, res))
            print(table[-1], flush=True)
    text = "\n".join(table) + "\n"
    (work / "sizes" / "table.md").write_text(text)
    print(text)
    return 0


def row(k: int, n: float, res: dict) -> str:
    """One table row from a ``--compare-random`` results.json."""
    choice, paired = res["choice"], res["paired"]

    def arm(name: str) -> str:
        d = choice[name]["dev"]
        return f"{d['mean']:.4f} ± {d['std']:.4f} (lr {choice[name]['lr']:g})"

    diff = paired
    return (
        f"| {k} | {n:g} min | {arm('pretrained')} | {arm('random')} | "
        f"{diff['mean']:+.4f} ± {diff['std']:.4f} | {diff['positive']} / {diff['n']} |"
    )


if __name__ == "__main__":
    sys.exit(main())
