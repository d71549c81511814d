"""The input format of Google's ``create_pretraining_data.py``: one sentence per line, a blank
line between documents.

Documents get ids ``records.doc_id("corpus", relpath, index)`` where ``index`` counts documents in
the file from 0, so the same file read locally or from ``gs://`` gives the same ids. Lines are
stripped like Google's reader (``line.strip()``); a blank line ends a document; several blank
lines in a row and a file without blank lines are fine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ground.atomic import atomic_path
from ground.errors import UserError
from pipeline.common.records import CORPUS, doc_id


def read_documents(lines: Iterable[str], relpath: str) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(doc_id, sentences)`` for each non-empty document of the text ``lines``."""
    index = 0
    current: list[str] = []
    for line in lines:
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            yield doc_id(CORPUS, relpath, index), current
            index += 1
            current = []
    if current:
        yield doc_id(CORPUS, relpath, index), current


def read_file(path: str, relpath: str | None = None) -> Iterator[tuple[str, list[str]]]:
    """Read one classic-format file (UTF-8); ``relpath`` defaults to the file name."""
    rel = relpath if relpath is not None else str(path).replace("\\", "/").rsplit("/", 1)[-1]
    try:
        with open(path, encoding="utf-8") as f:
            yield from read_documents(f, rel)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from exc


def write_documents(docs: Iterable[list[str]], path: str) -> None:
    """Write documents (lists of one-line sentences) in the classic format, atomically."""
    with atomic_path(path, mkdir=False) as tmp, open(tmp, "w", encoding="utf-8") as f:
        first = True
        for sents in docs:
            if not first:
                f.write("\n")
            first = False
            for s in sents:
                if "\n" in s or not s.strip():
                    raise ValueError("a sentence must be one non-blank line")
                f.write(s + "\n")
