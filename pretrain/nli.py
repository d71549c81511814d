"""SNLI as distributed (``snli_1.0_{train,dev,test}.jsonl``, optionally gzipped): a reader.

One JSON object per line; the reader takes ``sentence1`` (premise, text A), ``sentence2``
(hypothesis, text B) and ``gold_label``, one of ``entailment``, ``neutral``, ``contradiction``,
or ``-`` where the five annotators reached no majority. Those ``-`` rows have no gold class:
they are skipped and counted (SNLI 1.0 dev: 10,000 lines, 158 of them ``-``, 9,842 examples),
as every SNLI paper does. The other fields (parses, ``annotator_labels``, ids) are not read.
MultiNLI's JSONL files have the same three fields and read the same way.

The classes are the three labels in a fixed order (ids 0, 1, 2), that of the ``datasets``
hub's ``snli``.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from pathlib import Path

from ground.errors import UserError
from pretrain.finetune_data import Example, ReadResult

LABELS = ("entailment", "neutral", "contradiction")
NO_GOLD = "gold_label '-' (no annotator majority)"
_FIELDS = ("sentence1", "sentence2", "gold_label")
_GZIP_MAGIC = b"\x1f\x8b"


def _lines(path: Path):
    """``(line number, text)`` of a JSONL file, gunzipped when it starts with gzip's magic
    bytes (whatever its name); blank lines are left out."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    with open(path, "rb") as f:
        gz = f.read(2) == _GZIP_MAGIC
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield n, line
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason})") from None
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise UserError(f"{path}: damaged gzip data ({e or 'cut short'})") from None


def read_snli(path: str | Path) -> ReadResult:
    """Sentence pairs and gold labels of an SNLI (or MultiNLI) ``.jsonl`` / ``.jsonl.gz`` file.

    Skipped and counted (``ReadResult.skipped``): rows labelled ``-``, rows missing one of the
    three fields, rows with an empty sentence.

    Raises:
        UserError: missing or unreadable file, a line that is not a JSON object, a first object
            without SNLI's fields (another file), a label outside the three and ``-``, no
            example at all.
    """
    path = Path(path)
    examples: list[Example] = []
    skipped: Counter = Counter()
    for n, line in _lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: not SNLI JSONL (not valid JSON: {e.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{n}: not SNLI JSONL (expected a JSON object per line)")
        if any(k not in obj for k in _FIELDS):
            if not examples and not skipped:  # the first row: the wrong file, say so
                raise UserError(
                    f"{path}:{n}: no {', '.join(k for k in _FIELDS if k not in obj)} field; "
                    f"SNLI JSONL has {', '.join(_FIELDS)} (fields here: {sorted(obj)[:8]})"
                )
            skipped["missing field"] += 1
            continue
        a, b, label = obj["sentence1"], obj["sentence2"], obj["gold_label"]
        if label == "-":
            skipped[NO_GOLD] += 1
            continue
        if label not in LABELS:
            raise UserError(
                f"{path}:{n}: gold_label {label!r} is not one of {', '.join(LABELS)} or '-'; "
                "is this SNLI?"
            )
        if not isinstance(a, str) or not isinstance(b, str):
            raise UserError(f"{path}:{n}: sentence1 and sentence2 must be strings")
        if not a.strip() or not b.strip():
            skipped["empty text or label"] += 1
            continue
        examples.append(Example(a.strip(), b.strip(), label))
    if not examples:
        raise UserError(f"{path}: no SNLI examples (skipped: {dict(skipped)})")
    return ReadResult(examples, dict(sorted(skipped.items())))
