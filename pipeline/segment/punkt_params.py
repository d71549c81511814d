"""Punkt parameters: the shipped English model, a ``punkt_tab`` reader and writer, training.

A ``punkt_tab`` model is a directory of four UTF-8 text files, the format NLTK >= 3.9 reads
with ``nltk.tokenize.punkt.load_punkt_params`` (no pickles):

- ``abbrev_types.txt``: one abbreviation type per line (lower case, no final period);
- ``collocations.tab``: one ``word1<TAB>word2`` pair per line;
- ``sent_starters.txt``: one frequent sentence-starter type per line;
- ``ortho_context.tab``: one ``type<TAB>flags`` line per type, flags an int bit set.

Lines are separated by ``"\\n"`` and there is no final newline (NLTK's ``TabEncoder`` joins
with ``"\\n"``). Our writer sorts the lines so the same parameters give byte-identical files.

The English model shipped in ``pipeline/segment/data/punkt_tab/english/`` is NLTK's ``punkt_tab``
data package (Kiss & Strunk, trained on Wall Street Journal text; MIT License per the NLTK
data index), byte-identical to ``../shared/corpora/nltk_data`` (see SOURCES.md there).

Training uses NLTK's ``PunktTrainer`` on a bounded, deterministic sample: it was measured at
73 s and 990 MB of memory for 20 MB of text, so the sample is capped at ``max_chars``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ground.atomic import write_text
from ground.errors import UserError

ABBREV_FILE = "abbrev_types.txt"
COLLOC_FILE = "collocations.tab"
ORTHO_FILE = "ortho_context.tab"
STARTERS_FILE = "sent_starters.txt"
FILES = (ABBREV_FILE, COLLOC_FILE, ORTHO_FILE, STARTERS_FILE)

# Training sample bound in characters: 3 MB of the shared books train in ~9 s CPU with a
# peak RSS under 300 MB for the whole benchmark process (benchmarks/bench_segment.py
# --train), against 73 s and 990 MB for 20 MB; enough text for a domain's abbreviations.
DEFAULT_TRAIN_CHARS = 3_000_000


@dataclass(frozen=True)
class PunktParams:
    """The four Punkt parameter tables (the content of NLTK's ``PunktParameters``).

    ``ortho_context`` maps a word type to its orthographic-context bit set (NLTK's
    ``_ORTHO_*`` flags); a type that is absent has flags 0.
    """

    abbrev_types: frozenset[str]
    collocations: frozenset[tuple[str, str]]
    sent_starters: frozenset[str]
    ortho_context: dict[str, int]

    def counts(self) -> dict[str, int]:
        """Number of entries per table, for reports."""
        return {
            "abbrev_types": len(self.abbrev_types),
            "collocations": len(self.collocations),
            "sent_starters": len(self.sent_starters),
            "ortho_context": len(self.ortho_context),
        }


def _lines(handle) -> list[str]:
    # Same line reading as NLTK's TabDecoder: iterate the text file (universal newlines)
    # and drop one final "\n" per line.
    return [line[:-1] if line.endswith("\n") else line for line in handle]


def _parse(where: str, texts: dict[str, list[str]]) -> PunktParams:
    collocations = set()
    for n, line in enumerate(texts[COLLOC_FILE], 1):
        parts = tuple(line.split("\t"))
        if len(parts) != 2:
            raise UserError(f"{where}/{COLLOC_FILE} line {n}: expected 'word1<TAB>word2'")
        collocations.add(parts)
    ortho = {}
    for n, line in enumerate(texts[ORTHO_FILE], 1):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip().lstrip("-").isdigit():
            raise UserError(f"{where}/{ORTHO_FILE} line {n}: expected 'type<TAB>integer'")
        ortho[parts[0]] = int(parts[1])
    return PunktParams(
        abbrev_types=frozenset(texts[ABBREV_FILE]),
        collocations=frozenset(collocations),
        sent_starters=frozenset(texts[STARTERS_FILE]),
        ortho_context=ortho,
    )


def load_english() -> PunktParams:
    """The English parameters shipped inside the package (read via importlib.resources)."""
    try:
        root = resources.files(__package__).joinpath("data", "punkt_tab", "english")
    except (NotADirectoryError, TypeError):
        # An editable install can expose ``pipeline`` as a namespace package that
        # importlib.resources cannot map; the files still sit beside this module.
        root = Path(__file__).resolve().parent / "data" / "punkt_tab" / "english"
    texts = {}
    for name in FILES:
        with root.joinpath(name).open("r", encoding="utf-8") as handle:
            texts[name] = _lines(handle)
    return _parse("pipeline/segment/data/punkt_tab/english", texts)


def read_params(directory: str | os.PathLike) -> PunktParams:
    """Read a ``punkt_tab`` model directory (ours or NLTK's); UserError if missing/malformed."""
    path = Path(directory)
    if not path.is_dir():
        raise UserError(f"punkt_tab directory {str(path)!r} does not exist")
    texts = {}
    for name in FILES:
        try:
            with open(path / name, encoding="utf-8") as handle:
                texts[name] = _lines(handle)
        except FileNotFoundError:
            raise UserError(
                f"punkt_tab directory {str(path)!r} has no {name}; it needs {', '.join(FILES)}"
            ) from None
        except UnicodeDecodeError as exc:
            raise UserError(f"{path / name} is not UTF-8 text: {exc}") from None
    return _parse(str(path), texts)


def _check_field(value: str, table: str) -> str:
    # A tab or line break inside a type would corrupt the line-based format.
    if not value or any(c in value for c in "\t\n\r"):
        raise ValueError(f"{table}: type {value!r} cannot be written in punkt_tab format")
    return value


def encode_params(params: PunktParams) -> dict[str, str]:
    """The four file contents (``{file name: text}``), lines sorted, no final newline."""
    abbrevs = sorted(_check_field(a, "abbrev_types") for a in params.abbrev_types)
    starters = sorted(_check_field(s, "sent_starters") for s in params.sent_starters)
    collocs = sorted(
        f"{_check_field(a, 'collocations')}\t{_check_field(b, 'collocations')}"
        for a, b in params.collocations
    )
    ortho = [
        f"{_check_field(t, 'ortho_context')}\t{int(flags)}"
        for t, flags in sorted(params.ortho_context.items())
        if flags  # 0 is the default of an absent type; NLTK's defaultdict adds such keys
    ]
    return {
        ABBREV_FILE: "\n".join(abbrevs),
        COLLOC_FILE: "\n".join(collocs),
        ORTHO_FILE: "\n".join(ortho),
        STARTERS_FILE: "\n".join(starters),
    }


def write_params(params: PunktParams, directory: str | os.PathLike) -> Path:
    """Write ``params`` as a ``punkt_tab`` directory; each file atomically.

    Returns the directory. Same parameters -> byte-identical files.
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for name, text in encode_params(params).items():
        write_text(path / name, text)
    return path


def training_sample(texts: Iterable[str], max_chars: int = DEFAULT_TRAIN_CHARS) -> str:
    """The first ``max_chars`` characters of ``texts`` in the given order, as one text.

    Texts are joined with a blank line (a paragraph break for Punkt). The last text is cut
    at its last space before the bound so no word is split (hard cut if it has no space).
    The caller supplies a deterministic order (e.g. documents sorted by id), which makes the
    sample deterministic.
    """
    if max_chars <= 0:
        raise UserError(f"the Punkt training sample size must be positive, got {max_chars}")
    parts: list[str] = []
    size = 0
    for text in texts:
        text = text.strip()
        if not text:
            continue
        room = max_chars - size
        if len(text) > room:
            cut = text.rfind(" ", 0, room)
            piece = text[: cut if cut > 0 else room].strip()  # no space: cut hard
            if piece:
                parts.append(piece)
            break
        parts.append(text)
        size += len(text) + 2
        if size >= max_chars:
            break
    return "\n\n".join(parts)


def train_params(texts: Iterable[str], max_chars: int = DEFAULT_TRAIN_CHARS) -> PunktParams:
    """Learn Punkt parameters with NLTK's ``PunktTrainer`` from a bounded sample of ``texts``.

    ``texts`` is an iterable of documents (paragraphs separated by ``"\\n"``) in a
    deterministic order; only the first ``max_chars`` characters are used (see
    :func:`training_sample`). Raises UserError when there is no text to learn from.
    """
    from nltk.tokenize.punkt import PunktTrainer  # heavy import, only when training

    sample = training_sample(texts, max_chars)
    if not sample.strip():
        raise UserError("no text to train Punkt parameters on (the corpus is empty)")
    trainer = PunktTrainer()
    trainer.train(sample, finalize=True)
    learned = trainer.get_params()
    return PunktParams(
        abbrev_types=frozenset(learned.abbrev_types),
        collocations=frozenset(tuple(c) for c in learned.collocations),
        sent_starters=frozenset(learned.sent_starters),
        ortho_context={t: f for t, f in learned.ortho_context.items() if f},
    )
