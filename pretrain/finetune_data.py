"""Fine-tuning data: read labelled text (TSV/CSV/JSONL), map labels to ids, split, tokenize.

One example is a text (or a text pair, for sentence-pair tasks) and a label. Labels are read as
strings (a JSON integer ``1`` and a TSV ``1`` are the same label) and mapped to ids ``0..C-1`` in
sorted order (numeric order when every label is an integer), so the mapping does not depend on
row order and is the same for the train and eval files.

Encoding is BERT's: ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``, token type 0 for ``[CLS] A
[SEP]`` and 1 for ``B [SEP]``; pairs are truncated longest-first (one token at a time from the
longer side, as the BERT reference code and transformers' ``longest_first`` do).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ground.errors import UserError

_FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclass(frozen=True)
class Example:
    """One labelled example: ``text_b`` is ``None`` for single-sentence tasks."""

    text_a: str
    text_b: str | None
    label: str


@dataclass
class ReadResult:
    """Examples of one file plus rows skipped, by reason (never a silent loss)."""

    examples: list[Example]
    skipped: dict[str, int] = field(default_factory=dict)


def _label_str(value, where: str) -> str:
    """A label as a string: ints (not bools) and strings are accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(f"{where}: label {value!r} must be a string or an integer")
    return str(value).strip()


def _rows(path: Path, fmt: str):
    """Yield ``(where, dict | None, columns)``; ``None`` marks a malformed row."""
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            columns: list[str] = []
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}:{n}: not valid JSON ({e.msg})") from None
                if not isinstance(obj, dict):
                    raise UserError(f"{path}:{n}: expected a JSON object per line")
                columns = columns or list(obj)
                yield f"{path}:{n}", obj, columns
            return
        # GLUE TSVs are unquoted (sentences contain bare quotes); CSV follows RFC 4180 quoting.
        if fmt == "tsv":
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        for n, row in enumerate(reader, 2):
            if not row:
                continue
            yield f"{path}:{n}", dict(zip(header, row)) if len(row) == len(header) else None, header


def read_examples(
    path: str | Path, text_column: str, label_column: str, text_pair_column: str | None = None
) -> ReadResult:
    """Read labelled examples from a ``.tsv``, ``.csv`` or ``.jsonl`` file (header row required
    for TSV/CSV; one JSON object per line for JSONL).

    Rows with an empty text or label, or (TSV/CSV) a wrong number of fields, are skipped and
    counted in ``ReadResult.skipped``.

    Raises:
        UserError: unknown extension, unreadable or empty file, a missing column (the message
            names the columns present), no usable row.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown format; use .tsv, .csv or .jsonl ({', '.join(_FORMATS)})")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    wanted = [c for c in (text_column, text_pair_column, label_column) if c]
    examples: list[Example] = []
    skipped: Counter = Counter()
    checked = False
    try:
        for where, row, columns in _rows(path, fmt):
            if not checked:
                missing = [c for c in wanted if c not in columns]
                if missing:
                    raise UserError(
                        f"{path}: column(s) {missing} not found; columns present: {columns}"
                    )
                checked = True
            if row is None:
                skipped["wrong number of fields"] += 1
                continue
            if any(c not in row for c in wanted):
                skipped["missing field"] += 1
                continue
            a = row[text_column]
            b = row[text_pair_column] if text_pair_column else None
            label = row[label_column]
            if not isinstance(a, str) or (b is not None and not isinstance(b, str)):
                raise UserError(f"{where}: text fields must be strings")
            if label is None or not a.strip() or (b is not None and not b.strip()):
                skipped["empty text or label"] += 1
                continue
            label = _label_str(label, where)
            if not label:
                skipped["empty text or label"] += 1
                continue
            examples.append(Example(a.strip(), b.strip() if b is not None else None, label))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason})") from None
    if not examples:
        why = f" (skipped: {dict(skipped)})" if skipped else ""
        raise UserError(f"{path}: no examples{why}; is the file empty?")
    return ReadResult(examples, dict(sorted(skipped.items())))


def build_label_map(labels: list[str]) -> list[str]:
    """Sorted distinct labels; index = label id. Integer labels sort numerically ("2" < "10").

    Raises:
        UserError: fewer than two distinct labels (nothing to classify).
    """
    distinct = set(labels)
    if len(distinct) < 2:
        raise UserError(f"need at least two label classes, found {sorted(distinct)}")
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def split_train_eval(
    n: int, eval_fraction: float, seed: int, flag: str = "--eval-fraction"
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic random split of ``range(n)``: ``(train_idx, eval_idx)``, each sorted.

    The eval part has ``round(n * eval_fraction)`` rows, at least 1, and the train part at least
    1. ``flag`` names the option the fraction came from, for the error message.

    Raises:
        UserError: fraction outside (0, 1) or fewer than two rows.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise UserError(f"{flag} must be in (0, 1), got {eval_fraction}")
    if n < 2:
        raise UserError(f"cannot split {n} example(s) in two ({flag} {eval_fraction})")
    n_eval = min(max(1, round(n * eval_fraction)), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_eval:]), np.sort(perm[:n_eval])


@dataclass(frozen=True)
class Encoded:
    """Padded model inputs. Arrays are int64 ``[N, L]`` (L = longest encoded example; pad id 0
    with attention mask 0) and ``labels`` int64 ``[N]``."""

    input_ids: np.ndarray
    token_type_ids: np.ndarray
    attention_mask: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: np.ndarray) -> Encoded:
        """Rows ``idx`` (a split of an encoded file: tokenized once, split many times)."""
        return Encoded(
            self.input_ids[idx], self.token_type_ids[idx], self.attention_mask[idx],
            self.labels[idx],
        )  # fmt: skip


def _special_id(tokenizer, token: str) -> int:
    tid = tokenizer.token_to_id(token)
    if tid is None:
        raise UserError(f"the tokenizer has no {token} token; is it a BERT WordPiece tokenizer?")
    return tid


def truncate_pair(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Longest-first truncation of a pair to ``a + b <= budget`` tokens (lengths in, lengths out).

    Same result as the ``tokenizers``/transformers ``longest_first`` strategy, so a model saved
    here sees the same inputs under transformers: a side shorter than half the budget is kept
    whole, otherwise the longer side gets the odd token (side B on a tie). The BERT reference
    code differs only in that tie (it favours A). ``len_b`` may be 0 (single sentence).
    """
    if len_a + len_b <= budget:
        return len_a, len_b
    half = budget // 2
    if len_b == 0:
        return budget, 0
    if len_a <= half:
        return len_a, budget - len_a
    if len_b <= half:
        return budget - len_b, len_b
    longer_a = len_a > len_b
    return (budget - half, half) if longer_a else (half, budget - half)


def encode_examples(
    tokenizer, examples: list[Example], label_to_id: dict[str, int], max_seq_length: int
) -> Encoded:
    """Tokenize ``examples`` with a ``tokenizers.Tokenizer`` into BERT inputs.

    Special tokens are added here (not by the tokenizer's post-processor) so any WordPiece
    ``tokenizer.json`` works. Sequences are at most ``max_seq_length`` tokens, specials included.

    Raises:
        UserError: ``max_seq_length`` too small, a label missing from ``label_to_id``.
    """
    pair = any(e.text_b is not None for e in examples)
    n_special = 3 if pair else 2
    if max_seq_length < n_special + 2:
        raise UserError(f"--max-seq-length {max_seq_length} is too small")
    cls_id, sep_id = _special_id(tokenizer, "[CLS]"), _special_id(tokenizer, "[SEP]")
    pad_id = tokenizer.token_to_id("[PAD]")
    if pad_id not in (None, 0):
        raise UserError(f"the tokenizer's [PAD] id is {pad_id}; BERT models expect 0")
    enc_a = tokenizer.encode_batch([e.text_a for e in examples], add_special_tokens=False)
    enc_b = (
        tokenizer.encode_batch([e.text_b or "" for e in examples], add_special_tokens=False)
        if pair
        else [None] * len(examples)
    )
    seqs, types = [], []
    for ea, eb in zip(enc_a, enc_b):
        a, b = ea.ids, (eb.ids if eb is not None else [])
        la, lb = truncate_pair(len(a), len(b), max_seq_length - n_special)
        ids = [cls_id, *a[:la], sep_id]
        tt = [0] * len(ids)
        if pair:
            ids += [*b[:lb], sep_id]
            tt += [1] * (lb + 1)
        seqs.append(ids)
        types.append(tt)
    length = max(len(s) for s in seqs)
    input_ids = np.zeros((len(seqs), length), np.int64)
    token_type_ids = np.zeros_like(input_ids)
    attention_mask = np.zeros_like(input_ids)
    for i, (s, t) in enumerate(zip(seqs, types)):
        input_ids[i, : len(s)] = s
        token_type_ids[i, : len(t)] = t
        attention_mask[i, : len(s)] = 1
    try:
        labels = np.array([label_to_id[e.label] for e in examples], np.int64)
    except KeyError as e:
        raise UserError(f"label {e.args[0]!r} is not among the known labels") from None
    return Encoded(input_ids, token_type_ids, attention_mask, labels)


def load_tokenizer(vocab_dir: Path | None, pretrained):
    """``(tokenizer, files to copy into the saved model)`` from ``--vocab-dir`` or the model dir
    of ``pretrained`` (a :class:`pretrain.finetune.Pretrained`).

    Raises:
        UserError: no tokenizer.json to be found, or an unreadable one.
    """
    from tokenizers import Tokenizer  # tokenizers (Rust): loaded where text is tokenized

    src = vocab_dir or pretrained.tokenizer_dir
    if src is None:
        raise UserError("a checkpoint carries no tokenizer: pass --vocab-dir (e.g. RUN/seq128)")
    src = Path(src)
    path = src if src.suffix == ".json" else src / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"{path}: no such file (need the tokenizer.json of the pretraining run)")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on a malformed file
        raise UserError(f"{path}: not a tokenizers tokenizer.json ({e})") from None
    tok.no_truncation()  # a tokenizer.json may carry settings; we truncate pairs ourselves
    tok.no_padding()
    files: dict = {"tokenizer.json": path}
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (path.parent / name).is_file():
            files[name] = path.parent / name
    if "vocab.txt" not in files:
        vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
        files["vocab.txt"] = "".join(f"{t}\n" for t, _ in vocab)
    if "tokenizer_config.json" not in files:
        norm = json.loads(tok.to_str()).get("normalizer") or {}
        files["tokenizer_config.json"] = json.dumps(
            {"tokenizer_class": "BertTokenizer", "do_lower_case": bool(norm.get("lowercase")),
             "model_max_length": pretrained.config.max_position_embeddings},
            indent=2, sort_keys=True,
        ) + "\n"  # fmt: skip
    if tok.get_vocab_size() > pretrained.config.vocab_size:
        raise UserError(
            f"{path}: {tok.get_vocab_size()} tokens but the model has "
            f"{pretrained.config.vocab_size}; wrong --vocab-dir?"
        )
    return tok, files
