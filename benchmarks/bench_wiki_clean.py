"""Throughput of our Wikipedia reader + cleaner against the wikiextractor CLI.

Figure: MB of decompressed XML per CPU-second (user + sys of the measured process and all its
children, from ``resource.getrusage(RUSAGE_CHILDREN)``), both sides run as child processes on
the same file with templates dropped, both writing their documents to a temporary directory.
The best of ``--repeat`` runs is kept for each side.

    .venv/bin/python benchmarks/bench_wiki_clean.py
    .venv/bin/python benchmarks/bench_wiki_clean.py --file PATH.xml.bz2 --repeat 5

Target: ours >= 0.8x the CLI's rate, with the same number of pages cleaned (the CLI writes one
document per article, empty ones included; ours = documents + pages rejected after cleaning).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared" / "corpora" / "wikipedia" / "wp2txt_testdata_en.xml.bz2"


def run_ours(path: str, out_dir: str) -> dict:
    """Child-process body: read + clean ``path``, write JSON lines, print counts as JSON."""
    sys.path.insert(0, str(ROOT))
    from pipeline.common.records import Document
    from pipeline.extract.wiki import clean as wiki_clean
    from pipeline.extract.wiki import xml_reader
    from pipeline.extract.wiki.dump import extract_wikipedia

    wiki_clean.configure()
    with xml_reader.open_local(path) as fh, open(Path(out_dir) / "ours.jsonl", "w") as out:
        records = extract_wikipedia(fh, Path(path).name)
        for rec in records:
            if isinstance(rec, Document):
                out.write(json.dumps({"id": rec.id, "title": rec.title, "text": rec.text}) + "\n")
    s = records.summary
    cleaned = s.documents + sum(n for r, n in s.rejected.items() if r != "too_large")
    return {"documents": s.documents, "cleaned": cleaned, "pages": s.pages}


def xml_bytes(path: str) -> int:
    """Decompressed size of ``path`` (measured outside the timed runs)."""
    sys.path.insert(0, str(ROOT))
    from pipeline.extract.wiki import xml_reader

    with xml_reader.open_local(path) as fh:
        return sum(len(b) for b in iter(lambda: fh.read(1 << 20), b""))


def _cpu_of(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(DEFAULT_FILE))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=None, help="CLI --processes")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_ours(*args.child)))
        return 0

    ours_cpu, cli_cpu, counts, cli_docs = [], [], {}, 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cpu, proc = _cpu_of([sys.executable, __file__, "--child", args.file, tmp])
            ours_cpu.append(cpu)
            counts = json.loads(proc.stdout.strip().splitlines()[-1])
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "wikiextractor.WikiExtractor", "--no-templates", "-q"]
            if args.processes:
                cmd += ["--processes", str(args.processes)]
            cpu, _ = _cpu_of(cmd + ["-o", tmp, args.file])
            cli_cpu.append(cpu)
            cli_docs = sum(
                p.read_text(encoding="utf-8").count("<doc id=") for p in Path(tmp).rglob("wiki_*")
            )
    mb = xml_bytes(args.file) / 1e6
    ours_rate, cli_rate = mb / min(ours_cpu), mb / min(cli_cpu)
    print(f"file: {args.file} ({mb:.2f} MB of XML, {counts['pages']} pages)")
    print(f"pages cleaned: ours {counts['cleaned']} ({counts['documents']} kept), CLI {cli_docs}")
    print(f"ours: {ours_rate:.2f} MB/CPU-s  (best {min(ours_cpu):.2f} CPU-s of {ours_cpu})")
    print(f"CLI : {cli_rate:.2f} MB/CPU-s  (best {min(cli_cpu):.2f} CPU-s of {cli_cpu})")
    print(f"ratio ours/CLI: {ours_rate / cli_rate:.2f}x (target >= 0.8x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
