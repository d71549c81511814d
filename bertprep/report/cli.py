"""Write an HTML report with PNG plots of a run directory: documents, sentences and tokens per
source, length histograms, dropped documents, vocab coverage, instances per phase, training
curves and fine-tuning accuracy. Parts of the run that do not exist yet are skipped with a note.

Training dirs: --train DIR (repeatable, in phase order), else RUN/phase1, RUN/phase2, RUN/train*
holding metrics.jsonl. Fine-tuning dirs: --finetune DIR, else RUN/finetune*.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bertprep.report import data as report_data
from bertprep.report import page as report_html


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory (bertprep --output)")
    parser.add_argument(
        "--train", action="append", default=[], metavar="DIR",
        help="training output dir with metrics.jsonl (repeatable: phase 1, then phase 2)",
    )  # fmt: skip
    parser.add_argument(
        "--finetune", action="append", default=[], metavar="DIR",
        help="fine-tuning output dir (metrics.jsonl, *summary*.json); repeatable",
    )  # fmt: skip
    parser.add_argument("--output", help="report directory (default RUN_DIR/report)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    data = report_data.gather(args.run_dir, args.train, args.finetune)
    out = Path(args.output) if args.output else Path(args.run_dir) / "report"
    page = report_html.write_report(data, out)
    for section, why in data["missing"]:
        print(f"report: skipped {section}: {why}")
    print(f"report: {page}")
    return 0
