"""Vocab training at corpus scale: time, peak RSS and tokens per word against bert-base-uncased.

Corpus: the 17 Project Gutenberg books of ../shared/corpora (text between the START/END
markers) and the English Wikipedia samples (ns 0, no redirects, cleaned in-process by
wikiextractor, one revision per title: the gensim and wp2txt files hold the same pages). Held
out, never counted: 2 whole books and every 8th Wikipedia page (by sha256 of the title).
Held-out tokens per word are compared with Google's bert-base-uncased vocab on the same text.

"4x" trains on four distinct copies: copy k shifts every ASCII letter by k places (a Caesar
shift), so each copy has the same statistics but its own words.

Each training runs in a fresh child process (``--train``) so its peak RSS is its own.

    .venv/bin/python benchmarks/bench_vocab.py [--shared ../shared/corpora] [--sizes 30522,max]
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.vocab.files import (  # noqa: E402
    build_tokenizer,
    counts_tsv_bytes,
    read_counts,
    tokenizer_from_vocab,
    vocab_report,
)
from pipeline.vocab.word_counts import count_words, make_pretokenizer  # noqa: E402
from pipeline.vocab.wordpiece import WordPieceConfig, train_wordpiece  # noqa: E402

HELDOUT_BOOKS = ("1342.txt", "219.txt")  # Pride and Prejudice, Heart of Darkness
WIKI_FILES = (
    "wp2txt_testdata_en.xml.bz2",  # first: its 2022 revisions win over gensim's 2016 ones
    "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    "wiki2txt_enwiki-52-pages.xml",
    "enwiki-table-markup.xml.bz2",
)
_START = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", re.M)
_END = re.compile(r"^\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG.*$", re.M)


def book_text(path: Path) -> str:
    raw = path.read_bytes()
    text = raw.decode("latin-1") if path.name.endswith("-8.txt") else raw.decode("utf-8-sig")
    text = text.replace("\r\n", "\n")
    start, end = _START.search(text), _END.search(text)
    return text[start.end() : end.start()] if start and end else text


def wiki_pages(path: Path):
    """(title, wikitext) of every ns-0 non-redirect page; tolerates a truncated file."""
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rb") as f:
        title = ns = text = None
        redirect = False
        try:
            for _, el in ET.iterparse(f, events=("end",)):
                tag = el.tag.rsplit("}", 1)[-1]
                if tag == "title":
                    title = el.text
                elif tag == "ns":
                    ns = el.text
                elif tag == "redirect":
                    redirect = True
                elif tag == "text":
                    text = el.text or ""
                elif tag == "page":
                    if ns == "0" and not redirect and text:
                        yield title, text
                    title = ns = text = None
                    redirect = False
                    el.clear()
        except ET.ParseError:
            pass  # truncated dump: every page before the cut was yielded


def clean_wiki(title: str, text: str) -> str:
    from wikiextractor.extract import Extractor

    paras = Extractor(0, 0, "", title, [text]).clean_text(
        text, expand_templates=False, html_safe=False
    )
    return "\n".join(p for p in paras if p.strip())


def load_corpus(shared: Path) -> tuple[list[str], list[str], dict]:
    train, heldout = [], []
    stats = {"train_books": 0, "heldout_books": 0, "train_pages": 0, "heldout_pages": 0}
    for path in sorted((shared / "books" / "gutenberg").glob("*.txt")):
        held = path.name in HELDOUT_BOOKS
        (heldout if held else train).append(book_text(path))
        stats["heldout_books" if held else "train_books"] += 1
    seen = set()
    for name in WIKI_FILES:
        for title, text in wiki_pages(shared / "wikipedia" / name):
            if title in seen:
                continue
            seen.add(title)
            clean = clean_wiki(title, text)
            held = hashlib.sha256(title.encode()).digest()[0] % 8 == 0
            (heldout if held else train).append(clean)
            stats["heldout_pages" if held else "train_pages"] += 1
    return train, heldout, stats


def caesar(text: str, k: int) -> str:
    if k == 0:
        return text
    low = "abcdefghijklmnopqrstuvwxyz"
    up = low.upper()
    table = str.maketrans(low + up, low[k:] + low[:k] + up[k:] + up[:k])
    return text.translate(table)


def _hwm_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM; ru_maxrss survives exec on Linux and
    would report the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_child(counts_path: str, vocab_size: int, out_path: str) -> None:
    """Child process: read counts, train, write tokens; print time and peak RSS as JSON."""
    counts = read_counts(counts_path)
    rss0 = _hwm_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    res = train_wordpiece(counts, WordPieceConfig(vocab_size=vocab_size, allow_smaller=True))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    Path(out_path).write_text("\n".join(res.tokens) + "\n", encoding="utf-8")
    peak = _hwm_mb()
    print(
        json.dumps(
            {
                "train_s": round(seconds, 2),
                "train_cpu_s": round(cpu, 2),
                "peak_rss_mb": round(peak, 1),
                "rss_before_train_mb": round(rss0, 1),
                "vocab": len(res.tokens),
                "last_merge_count": res.last_merge_count,
            }
        )
    )


def run_case(label, texts, heldout, sizes, tmp: Path, bert_tpw: float) -> None:
    pretok = make_pretokenizer(True)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    t0, c0 = time.perf_counter(), time.process_time()
    counts = count_words(texts, pretok)
    count_s, count_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"[{label}] {mb:.1f} MB, {sum(counts.values()):,} words, {len(counts):,} distinct; "
        f"count_words {count_s:.1f} s wall, {count_cpu:.1f} s CPU = {mb / count_cpu:.1f} MB/s per "
        "core"
    )
    cpath = tmp / f"{label}.counts.tsv"
    cpath.write_bytes(counts_tsv_bytes(counts))
    for size in sizes:
        vs = 10**7 if size == "max" else int(size)
        out = tmp / f"{label}.{size}.vocab"
        cmd = [sys.executable, __file__, "--train", str(cpath), str(vs), str(out)]
        child = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
        tokens = out.read_text(encoding="utf-8").split("\n")[:-1]
        rep = vocab_report(build_tokenizer(tokens, True), counts, heldout, pretok)
        ratio = rep["tokens_per_word"] / bert_tpw
        print(
            f"[{label}] size={size}: vocab {child['vocab']:,} (last merge count "
            f"{child['last_merge_count']}), train {child['train_s']} s wall, "
            f"{child['train_cpu_s']} s CPU, peak RSS {child['peak_rss_mb']} MB "
            f"({child['rss_before_train_mb']} MB before training); "
            f"held-out tokens/word {rep['tokens_per_word']:.4f} = {ratio:.3f} x bert-base-uncased,"
            f" UNK rate {rep['unk_rate']:.5f}, train coverage {rep['train_word_coverage']:.4f}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "corpora"))
    ap.add_argument(
        "--sizes", default="30522,max", help="vocab sizes; 'max' = all the corpus supports"
    )
    ap.add_argument("--copies", default="1,4")
    ap.add_argument("--train", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.train:
        train_child(args.train[0], int(args.train[1]), args.train[2])
        return 0
    shared = Path(args.shared)
    t0 = time.perf_counter()
    train, heldout, stats = load_corpus(shared)
    print(f"corpus loaded in {time.perf_counter() - t0:.1f} s: {stats}")
    bert = tokenizer_from_vocab(shared / "vocab" / "bert-base-uncased-vocab.txt", lowercase=True)
    pretok = make_pretokenizer(True)
    bert_rep = vocab_report(bert, {}, heldout, pretok)
    print(
        f"held-out: {bert_rep['heldout_words']:,} words; bert-base-uncased tokens/word "
        f"{bert_rep['tokens_per_word']:.4f}, UNK rate {bert_rep['unk_rate']:.5f}"
    )
    sizes = args.sizes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(c) for c in args.copies.split(",")):
            texts = [caesar(t, k) for k in range(n) for t in train]
            run_case(f"{n}x", texts, heldout, sizes, Path(tmp), bert_rep["tokens_per_word"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
