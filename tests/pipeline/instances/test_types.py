"""Statistics of the builder on the 17 shared Gutenberg books (seq 128, dupe 5, max_pred 20).

Input as for the classic builder: Gutenberg header/footer cut at the START/END markers,
paragraphs unwrapped, NLTK Punkt sentences, one book = one document, bert-base-uncased ids.
The reference is a line-by-line port of Google's ``create_instances_from_document`` (below, kept
independent of pipeline/instances/builder.py) whose masked count is Google's formula.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from pipeline.common.records import BOOKS, doc_id
from pipeline.common.textnorm import unwrap
from pipeline.instances.builder import FlatDoc, InstanceConfig, VocabInfo, build_group_batches
from pipeline.instances.tokenize import FastWordPiece

ISSUE_TOKENS, ISSUE_MASKED = 121.0, 17.97  # the classic builder on the same input (issue 4)
_START = re.compile(r"\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
_END = re.compile(r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)


def gutenberg_body(raw: bytes) -> str:
    """The text between the START and END marker lines (a START marker may wrap a line)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = next(i for i, ln in enumerate(lines) if _START.match(ln))
    while not lines[start].rstrip().endswith("***"):
        start += 1
    end = next(i for i, ln in enumerate(lines) if _END.match(ln))
    return "\n".join(lines[start + 1 : end])


def book_sentences(book_dir: Path, nltk_dir: Path) -> list[tuple[str, list[str]]]:
    """(doc id, sentences) per book, sorted by file name."""
    import nltk
    from nltk.tokenize import sent_tokenize

    if str(nltk_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_dir))
    out = []
    for path in sorted(book_dir.glob("*.txt")):
        paras = unwrap(gutenberg_body(path.read_bytes()))
        sents = [s for p in paras for s in sent_tokenize(p)]
        out.append((doc_id(BOOKS, f"gutenberg/{path.name}", ""), sents))
    return out


def google_reference(docs: list[list[list[int]]], dupe: int, seq: int, seed: int, short: float):
    """Google's create_instances_from_document (NSP, max_pred 20), lengths only.

    Returns (instances, total tokens, total masked, random-next count)."""
    rng = random.Random(seed)
    max_num_tokens = seq - 3
    count = tokens = masked = rand = 0
    for _ in range(dupe):
        for di, document in enumerate(docs):
            target = max_num_tokens
            if rng.random() < short:
                target = rng.randint(2, max_num_tokens)
            chunk, length, i = [], 0, 0
            while i < len(document):
                chunk.append(document[i])
                length += len(document[i])
                if i == len(document) - 1 or length >= target:
                    a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                    la = sum(len(s) for s in chunk[:a_end])
                    lb = 0
                    if len(chunk) == 1 or rng.random() < 0.5:
                        rand += 1
                        for _ in range(10):
                            r = rng.randint(0, len(docs) - 1)
                            if r != di:
                                break
                        rdoc = docs[r]
                        for j in range(rng.randint(0, len(rdoc) - 1), len(rdoc)):
                            lb += len(rdoc[j])
                            if lb >= target - la:
                                break
                        i -= len(chunk) - a_end
                    else:
                        lb = sum(len(s) for s in chunk[a_end:])
                    while la + lb > max_num_tokens:  # truncate_seq_pair, lengths only
                        if la > lb:
                            la -= 1
                        else:
                            lb -= 1
                    n = la + lb + 3
                    count += 1
                    tokens += n
                    masked += min(20, max(1, int(round(n * 0.15))))
                    chunk, length = [], 0
                i += 1
    return count, tokens, masked, rand


@pytest.fixture(scope="session")
def book_docs(shared_dir, corpus_dir) -> list[FlatDoc]:
    books = book_sentences(shared_dir / "books" / "gutenberg", shared_dir / "nltk_data")
    assert len(books) == 17
    fw = FastWordPiece.from_vocab_file(str(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"))
    return [FlatDoc(i, *fw.encode_document(sents)) for i, sents in books]


def _run(docs, cfg, vocab, seed=12345):
    stats = None
    for _, st in build_group_batches(docs, cfg, vocab, seed):
        stats = st if stats is None else stats.merge(st)
    return stats


@pytest.mark.shared  # the figures are those of the 17 books of ../shared (issue 4)
def test_book_statistics(book_docs, corpus_dir):
    vocab = VocabInfo.from_vocab_file(str(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"))
    st = _run(book_docs, InstanceConfig(), vocab)
    n = st.instances
    assert n >= 20_000
    assert abs(st.random_next / n - 0.50) <= 0.01
    assert abs(st.short_targets / n - 0.10) <= 0.01
    assert st.masked == st.masked_mask + st.masked_random + st.masked_keep
    assert abs(st.masked_mask / st.masked - 0.8) <= 0.01
    assert abs(st.masked_random / st.masked - 0.1) <= 0.01
    assert abs(st.masked_keep / st.masked - 0.1) <= 0.01
    mean_tokens, mean_masked = st.tokens / n, st.masked / n
    assert abs(mean_tokens / ISSUE_TOKENS - 1) <= 0.03, mean_tokens
    assert abs(mean_masked / ISSUE_MASKED - 1) <= 0.03, mean_masked

    # Google's short target is drawn once per document pass, so on 17 books its mean length
    # swings with the seed (102-119 tokens over seeds 0-5 of the port below); ours is drawn per
    # instance. Google's one-sentence rule biases NSP: more than 0.51 random.
    docs = [
        [d.tokens[a:b].tolist() for a, b in zip(d.offsets[:-1], d.offsets[1:])] for d in book_docs
    ]
    g_n, g_tokens, g_masked, g_rand = google_reference(docs, 5, 128, seed=1, short=0.1)
    assert g_rand / g_n > 0.51
    cl = _run(book_docs, InstanceConfig(classic=True), vocab)
    assert cl.forced_random_next == cl.one_sentence_chunks > 0
    assert cl.random_next / cl.instances > 0.51

    # Without short targets nothing is drawn per document, and classic=True must match the
    # independent port of Google's code on the same token ids.
    g_n, g_tokens, g_masked, g_rand = google_reference(docs, 5, 128, seed=1, short=0.0)
    cl = _run(book_docs, InstanceConfig(classic=True, short_seq_prob=0.0), vocab)
    assert abs(cl.instances / g_n - 1) <= 0.01
    assert abs(cl.random_next / cl.instances - g_rand / g_n) <= 0.01
    assert abs((cl.tokens / cl.instances) / (g_tokens / g_n) - 1) <= 0.005
    assert abs((cl.masked / cl.instances) / (g_masked / g_n) - 1) <= 0.005
