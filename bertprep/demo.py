"""``make demo``: the whole path on the corpus bundled in the repo (corpus/), printing a summary.

Stages run through the same ``bertprep`` command a user types; each stage's wall time is
reported. Usage: ``python -m bertprep.demo [--output RUN] [--fast]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bertprep.cli import main as bertprep

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"


def stages(run: str, fast: bool) -> list[tuple[str, list[str]]]:
    """The demo's commands, in order: (label, bertprep argv)."""
    wiki = str(CORPUS / "wikipedia" / "*")
    build = [
        "build",
        "--wikipedia",
        wiki,
        "--books",
        str(CORPUS / "books"),
        "--output",
        run,
        "--vocab-size",
        "8000" if fast else "16000",
        "--overwrite",
    ]
    if fast:
        build += ["--dupe-factor", "1"]
    return [
        ("build", build),
        ("verify seq128", ["shards", "verify", f"{run}/seq128"]),
        ("verify seq512", ["shards", "verify", f"{run}/seq512"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="demo-run", help="run directory (default demo-run)")
    parser.add_argument("--fast", action="store_true", help="smallest settings (CI)")
    args = parser.parse_args(argv)
    if not CORPUS.is_dir():
        print(
            f"demo: {CORPUS} not found; run the demo from a checkout of the repo", file=sys.stderr
        )
        return 2
    timings = {}
    for label, cmd in stages(args.output, args.fast):
        print(f"\n=== {label}: bertprep {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        rc = bertprep(cmd)
        timings[label] = time.perf_counter() - t0
        if rc != 0:
            print(f"demo: stage {label} failed with exit code {rc}", file=sys.stderr)
            return rc
    report = json.loads((Path(args.output) / "report.json").read_text())
    print("\n=== summary")
    print(f"documents: {report['docs_in']} in, {report['docs_out']} out -> {args.output}/docs")
    print(f"skipped: {report['skipped']}  rejected: {report['rejected']}")
    seg, voc = report.get("segment", {}), report.get("vocab", {})
    print(f"sentences: {seg.get('sentences')} -> {args.output}/sentences")
    print(
        f"vocab: {voc.get('vocab_size')} entries, held-out tokens/word "
        f"{voc.get('tokens_per_word')} -> {args.output}/vocab"
    )
    for phase, info in sorted(report.get("instances", {}).items()):
        print(
            f"{phase}: {info['training']} training + {info['validation']} validation instances"
            f" in {info['shards']} shards -> {args.output}/{phase}"
        )
    for label, secs in timings.items():
        print(f"time {label}: {secs:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
