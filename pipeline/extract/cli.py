"""Extract clean documents from Wikipedia dumps, books and corpora into RUN/docs (Parquet).

Inputs (each repeatable, paths or globs on any Beam filesystem, gs:// included):
  --wikipedia  MediaWiki XML exports, .xml or .xml.bz2 (multistream dumps with an index beside
               them are split into byte ranges, one worker each)
  --books      directories of .txt books (one book = one document) or globs
  --corpus     JSONL (.jsonl/.json/.ndjson, optionally .gz/.zst/.bz2), Parquet, plain text, or
               WikiExtractor output (AA/wiki_00 files, plain <doc> or --json, optionally .bz2);
               a directory means every file under it, at any depth

Writes RUN/docs/*.parquet, RUN/rejected/*.parquet (every dropped document with its reason),
RUN/report/extract.json and the extraction counts at the top of RUN/report.json.
"""

from __future__ import annotations

import argparse

from ground.errors import UserError
from pipeline.extract.core import ExtractOptions, parse_dump_date
from pipeline.extract.stage import ExtractInputs, run_extract, summary


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The input flags shared by ``extract`` and ``build``."""
    g = parser.add_argument_group("inputs")
    g.add_argument(
        "--wikipedia",
        action="append",
        default=[],
        metavar="PATH_OR_GLOB",
        help="MediaWiki XML dump(s), .xml or .xml.bz2; repeatable",
    )
    g.add_argument(
        "--books",
        action="append",
        default=[],
        metavar="DIR_OR_GLOB",
        help="directory of .txt books, or a glob; repeatable",
    )
    g.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="PATH_OR_GLOB",
        help="JSONL/Parquet/text corpus files, or WikiExtractor output (a directory: every "
        "file under it); repeatable",
    )
    e = parser.add_argument_group("extraction")
    e.add_argument(
        "--namespaces",
        default="0",
        help="comma-separated MediaWiki namespaces to keep (default: 0, articles)",
    )
    e.add_argument(
        "--keep-headings",
        action="store_true",
        help="keep section/chapter headings of Wikipedia pages and books as paragraphs "
        "(default: dropped); --corpus text is kept as given",
    )
    e.add_argument(
        "--expand-templates",
        action="store_true",
        help="expand templates from the Template pages of all --wikipedia inputs (a first "
        "pass collects them, so a dump's parts expand with each other's definitions; every "
        "worker holds them all: enwiki's: ~1 GB, estimated). Date templates use the dump's date. "
        "Default: templates are dropped",
    )
    e.add_argument(
        "--dump-date",
        default="",
        metavar="YYYYMMDD",
        help="with --expand-templates: the date date templates evaluate to (default: the "
        "date in the dump's file name, else the newest revision in all inputs; never today's)",
    )
    e.add_argument(
        "--max-page-bytes",
        type=int,
        default=4_000_000,
        help="reject wiki pages whose wikitext exceeds this many bytes as too_large "
        "(default: 4000000)",
    )
    e.add_argument(
        "--min-words",
        type=int,
        default=10,
        help="reject documents with fewer words as too_short (default: 10)",
    )
    e.add_argument(
        "--no-dedup",
        action="store_true",
        help="keep exact duplicates (default: the smallest id of equal texts wins)",
    )
    e.add_argument(
        "--text-field",
        default="text",
        help="JSONL field / Parquet column with the text (default: text)",
    )
    e.add_argument(
        "--title-field",
        default="title",
        help="JSONL field / Parquet column with a title, if present (default: title)",
    )
    e.add_argument(
        "--text-mode",
        choices=("line", "blank"),
        default="blank",
        help="plain-text corpora: one document per line, or documents separated by "
        "blank lines (default: blank)",
    )
    e.add_argument(
        "--range-mb",
        type=float,
        default=16,
        help="compressed MB per work unit when splitting multistream dumps (default 16)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument(
        "--output", required=True, metavar="RUN", help="run directory (local path or gs://...)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo the extraction even if RUN/docs is complete"
    )


def options_from_args(args: argparse.Namespace):

    try:
        namespaces = tuple(sorted({int(n) for n in args.namespaces.split(",") if n.strip()}))
    except ValueError:
        raise UserError(f"--namespaces must be integers, got {args.namespaces!r}") from None
    if args.min_words < 0 or args.max_page_bytes <= 0:
        raise UserError("--min-words must be >= 0 and --max-page-bytes > 0")
    if args.dump_date:
        try:
            parse_dump_date(args.dump_date)
        except ValueError:
            raise UserError(
                f"--dump-date must be a date as YYYYMMDD, got {args.dump_date!r}"
            ) from None
    return ExtractOptions(
        namespaces=namespaces,
        keep_headings=args.keep_headings,
        expand_templates=args.expand_templates,
        max_page_bytes=args.max_page_bytes,
        min_words=args.min_words,
        dedup=not args.no_dedup,
        text_field=args.text_field,
        title_field=args.title_field,
        text_mode=args.text_mode,
        dump_date=args.dump_date,
    )


def run(args: argparse.Namespace, extra: list[str]) -> int:
    inputs = ExtractInputs(
        tuple(args.wikipedia or ()),
        tuple(args.books or ()),
        tuple(args.corpus or ()),
        args.range_mb,
    )
    run_dir = args.output.rstrip("/")
    stage = run_extract(inputs, options_from_args(args), run_dir, args.overwrite, extra)
    print(summary(stage, run_dir))
    return 0
