"""Benchmark of the whole extraction stage (`bertprep extract`) against the wikiextractor CLI.

Prints, for ../shared/corpora/wikipedia/wp2txt_testdata_en.xml.bz2 (10.5 MB of XML):
  - MB of XML per CPU-second (user + sys of the process and all its children), ours vs
    `python -m wikiextractor.WikiExtractor --no-templates` (same template setting), with the
    document counts of both: the median of --repeats interleaved pairs, after a warm-up;
  - the same ratio for one command over 4 distinct copies (start-up paid once);
  - wall time with --direct_num_workers 1 and 2 on 4 distinct copies (4 work units);
  - peak RSS of one in-process worker on 1x and 4x inputs (4 distinct files, --no-dedup).

Usage: .venv/bin/python benchmarks/bench_extract.py [--dump PATH] [--repeats N]
(run it in a pipeline-only venv, `pip install -e .[pipeline]`, to measure what such users get)
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DUMP = ROOT.parent / "shared" / "corpora" / "wikipedia" / "wp2txt_testdata_en.xml.bz2"


# Children may write bytecode: an installed package has its .pyc files, an editable checkout
# under PYTHONDONTWRITEBYTECODE=1 would recompile bertprep's modules on every run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_measured(cmd: list[str]) -> tuple[float, float, int, str]:
    """Run ``cmd``: (wall s, CPU s of children, peak RSS KiB of the largest child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss, out.stdout


def ours(inputs: str, run: Path, *extra: str) -> tuple[float, float, int, dict]:
    cmd = [
        sys.executable,
        "-m",
        "bertprep",
        "extract",
        "--wikipedia",
        inputs,
        "--output",
        str(run),
        "--overwrite",
        "--min-words",
        "0",
        *extra,
    ]
    wall, cpu, rss, _ = run_measured(cmd)
    return wall, cpu, rss, json.loads((run / "report.json").read_text())


def theirs(dump: Path, out: Path) -> tuple[float, float, int]:
    cmd = [
        sys.executable,
        "-m",
        "wikiextractor.WikiExtractor",
        "--no-templates",
        "--json",
        "-q",
        "-o",
        str(out),
        str(dump),
    ]
    wall, cpu, _, _ = run_measured(cmd)
    docs = sum(1 for f in out.rglob("wiki_*") for _ in f.open())
    return wall, cpu, docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dump", type=Path, default=DUMP)
    parser.add_argument("--repeats", type=int, default=5, help="paired runs (default 5)")
    args = parser.parse_args()
    xml_mb = len(bz2.decompress(args.dump.read_bytes())) / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        one = tmp / "one"
        one.mkdir()
        shutil.copy(args.dump, one / "part1.xml.bz2")
        # Warm-up (bytecode, page cache), then interleaved repeats: this machine's CPU speed
        # drifts by tens of percent within minutes, so each ratio compares neighbours.
        ours(str(one / "*"), tmp / "r1", "--no-dedup")
        theirs(args.dump, tmp / "cli")
        samples = []
        for _ in range(args.repeats):
            w, c_ours, rss1, rep = ours(str(one / "*"), tmp / "r1", "--no-dedup")
            shutil.rmtree(tmp / "cli", ignore_errors=True)
            w2, c_cli, docs_cli = theirs(args.dump, tmp / "cli")
            _, c_dedup, _, _ = ours(str(one / "*"), tmp / "r1d")  # the default: dedup on
            samples.append((c_ours, c_cli, c_dedup))
        print(
            "CPU-s per run (ours --no-dedup, cli, ours with dedup):",
            ", ".join(f"({a:.2f}, {b:.2f}, {c:.2f})" for a, b, c in samples),
        )
        c_ours = statistics.median(a for a, _, _ in samples)
        c_cli = statistics.median(b for _, b, _ in samples)
        ratio = statistics.median(b / a for a, b, _ in samples)
        ratio_dedup = statistics.median(b / c for _, b, c in samples)
        print(f"XML: {xml_mb:.1f} MB")
        print(
            f"ours:          {xml_mb / c_ours:6.2f} MB/CPU-s  (cpu {c_ours:.1f} s, wall {w:.1f} s,"
            f" {rep['docs_out'] + sum(n for r, n in rep['rejected'].items() if r != 'too_large')}"
            " pages cleaned)"
        )
        print(
            f"wikiextractor: {xml_mb / c_cli:6.2f} MB/CPU-s  (cpu {c_cli:.1f} s, wall {w2:.1f} s,"
            f" {docs_cli} docs)"
        )
        print(f"ratio ours/cli (median of the {args.repeats} paired runs): {ratio:.2f}x")
        print(f"  with dedup on (the default; the CLI has none): {ratio_dedup:.2f}x")
        tiny = tmp / "tiny"
        tiny.mkdir()
        shutil.copy(ROOT / "corpus" / "wikipedia" / "mediawiki-dump_fowiki-dump.xml.bz2", tiny)
        _, c_start, _, _ = ours(str(tiny / "*"), tmp / "r0")
        print(
            f"start-up (same command on a 6 KB dump): {c_start:.1f} CPU-s; without it ours is "
            f"{xml_mb / (c_ours - c_start):.2f} MB/CPU-s"
            f" = {c_cli / (c_ours - c_start):.2f}x the CLI"
        )
        four = tmp / "four"
        four.mkdir()
        for i in range(4):
            shutil.copy(args.dump, four / f"part{i + 1}.xml.bz2")
        walls, cpus = {}, {}
        for n in (1, 2):
            walls[n], cpus[n], _, _ = ours(
                str(four / "*"), tmp / f"r4-{n}", "--no-dedup", "--direct_num_workers", str(n)
            )
        # The CLI takes one file per invocation: 4 files cost it 4 runs.
        print(
            f"4 files ({4 * xml_mb:.0f} MB), whole command: ours"
            f" {4 * xml_mb / cpus[1]:.2f} MB/CPU-s"
            f" (1 worker, one start-up) vs CLI {xml_mb / c_cli:.2f} per file"
            f" = {4 * c_cli / cpus[1]:.2f}x"
        )
        print(
            f"4 files wall: 1 worker {walls[1]:.1f} s, 2 workers {walls[2]:.1f} s "
            f"({walls[1] / walls[2]:.2f}x)"
        )
        # RSS: a fresh process per measurement, so ru_maxrss is that run's own peak.
        rss = {}
        for label, pattern in (("1x", str(one / "*")), ("4x", str(four / "*"))):
            code = (
                "import resource,sys;from bertprep.cli import main;"
                f"main(['extract','--wikipedia',{pattern!r},"
                f"'--output',{str(tmp / ('m' + label))!r},"
                "'--no-dedup']);print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            rss[label] = int(out.stdout.strip().splitlines()[-1]) / 1024
        print(
            f"peak RSS (1 in-process worker): 1x {rss['1x']:.0f} MB, 4x {rss['4x']:.0f} MB "
            f"(ratio {rss['4x'] / rss['1x']:.2f})"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
