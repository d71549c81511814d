"""GLUE tasks as distributed (``glue_data/<TASK>/{train,dev}.tsv``): readers and a registry.

Each file has its own layout, read exactly (tab-separated, no quoting: the sentences contain bare
``"`` characters that a quoting reader would swallow):

* SST-2: header ``sentence<TAB>label``; 67,349 train and 872 dev rows.
* CoLA: no header; four columns ``source, label, original label (blank), sentence``; 8,551
  train and 1,043 dev rows (dev = in-domain + out-of-domain, GLUE's validation set).
* MRPC: header ``Quality, #1 ID, #2 ID, #1 String, #2 String`` after a UTF-8 byte-order mark;
  sentence pairs; 3,668 train and 408 dev rows.

Labels are ``"0"``/``"1"`` in every task (ids 0 and 1). Headline metrics as GLUE reports them:
SST-2 accuracy, CoLA Matthews correlation, MRPC F1 of the positive class (paraphrase), with
accuracy reported beside it.

SNLI (``--task snli``, :mod:`pretrain.nli`) is registered here too, with its own reader: JSONL
files rather than a GLUE directory, three classes, accuracy with macro F1 beside it.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ground.errors import UserError
from pretrain import nli
from pretrain.finetune_data import Example, ReadResult

_MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]


def _tsv_rows(path: Path):
    """``(line number, fields)`` of a GLUE TSV; a leading BOM is dropped (MRPC has one)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if row:
                    yield n, row
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason})") from None
    except csv.Error as e:  # e.g. a NUL byte: not a GLUE text file
        raise UserError(f"{path}: not a TSV file ({e})") from None


def _collect(path: Path, task: str, rows, n_fields: int, pick) -> ReadResult:
    """Examples from ``rows`` of ``n_fields`` fields each (``pick`` maps fields to ``(a, b,
    label)``); rows of another width or with an empty text are counted as skipped.

    Raises:
        UserError: a label other than 0/1 (the message names the task: a wrong file), no rows.
    """
    examples, skipped = [], Counter()
    for n, row in rows:
        if len(row) != n_fields:
            skipped["wrong number of fields"] += 1
            continue
        a, b, label = pick(row)
        if label not in ("0", "1"):
            raise UserError(f"{path}:{n}: label {label!r} is not 0 or 1; is this {task}'s file?")
        if not a.strip() or (b is not None and not b.strip()):
            skipped["empty text or label"] += 1
            continue
        examples.append(Example(a.strip(), b.strip() if b is not None else None, label))
    if not examples:
        raise UserError(f"{path}: no {task} examples (skipped: {dict(skipped)})")
    return ReadResult(examples, dict(sorted(skipped.items())))


def _header(path: Path, task: str, rows, expected: list[str]):
    """Check the header row against ``expected`` and return the remaining rows."""
    first = next(rows, None)
    if first is None or first[1] != expected:
        got = first[1] if first else "an empty file"
        raise UserError(f"{path}: header {got!r}, expected {expected} ({task}'s train/dev.tsv)")
    return rows


def read_sst2(path: str | Path) -> ReadResult:
    """SST-2 train/dev.tsv: header ``sentence, label``; single sentences."""
    path = Path(path)
    rows = _header(path, "SST-2", _tsv_rows(path), ["sentence", "label"])
    return _collect(path, "SST-2", rows, 2, lambda r: (r[0], None, r[1]))


def read_cola(path: str | Path) -> ReadResult:
    """CoLA train/dev.tsv: no header; ``source, label, original label, sentence``."""
    path = Path(path)
    return _collect(path, "CoLA", _tsv_rows(path), 4, lambda r: (r[3], None, r[1]))


def read_mrpc(path: str | Path) -> ReadResult:
    """MRPC train/dev.tsv: BOM + header ``Quality, #1 ID, #2 ID, #1 String, #2 String``."""
    path = Path(path)
    rows = _header(path, "MRPC", _tsv_rows(path), _MRPC_HEADER)
    return _collect(path, "MRPC", rows, 5, lambda r: (r[3], r[4], r[0]))


@dataclass(frozen=True)
class Task:
    """One task: its reader, whether examples are sentence pairs, the metric chosen on
    (``selection`` and reported first), the other metrics reported beside it, its classes in
    id order, and whether it comes as a GLUE directory (``--glue-dir``: train.tsv, dev.tsv)."""

    name: str
    reader: Callable[[str | Path], ReadResult]
    pair: bool
    metric: str
    also: tuple[str, ...] = ()
    labels: tuple[str, ...] = ("0", "1")
    glue_dir: bool = True

    @property
    def reported(self) -> tuple[str, ...]:
        """Metrics shown in tables: the headline first."""
        return (self.metric, *self.also)


TASKS: dict[str, Task] = {
    "sst2": Task("sst2", read_sst2, pair=False, metric="accuracy"),
    "cola": Task("cola", read_cola, pair=False, metric="mcc", also=("accuracy",)),
    "mrpc": Task("mrpc", read_mrpc, pair=True, metric="f1", also=("accuracy",)),
    # Not a GLUE task: SNLI's JSONL files (--train/--eval), three classes.
    "snli": Task(
        "snli",
        nli.read_snli,
        pair=True,
        metric="accuracy",
        also=("macro_f1",),
        labels=nli.LABELS,
        glue_dir=False,
    ),
}


def get_task(name: str) -> Task:
    """The registered task ``name`` (case-insensitive; ``SST-2`` works too).

    Raises:
        UserError: unknown task.
    """
    task = TASKS.get(name.lower().replace("-", ""))
    if task is None:
        raise UserError(f"--task {name!r}: unknown; choose one of {', '.join(TASKS)}")
    return task


def task_files(glue_dir: str | Path) -> tuple[Path, Path]:
    """``(train.tsv, dev.tsv)`` of a task directory as GLUE distributes it.

    Raises:
        UserError: either file missing.
    """
    d = Path(glue_dir)
    files = d / "train.tsv", d / "dev.tsv"
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise UserError(f"--glue-dir {d}: no {' or '.join(missing)} (expected GLUE's task dir)")
    return files
