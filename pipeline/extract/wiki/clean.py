"""Wikitext of one page -> plain text, with wikiextractor 3.1 running in-process.

wikiextractor (AGPL-3.0) does the markup work (``extract.clean`` then ``extract.compact``); this
module owns everything around it:

* :func:`configure` sets the process-wide state once per worker (``DoFn.setup()``): the
  template namespace that wikiextractor's own module globals hold (``WikiExtractor
  .templateNamespace``/``moduleNamespace``, read by its page reader and template loader), and
  the default :class:`WikiCleaner` that :func:`clean_wikitext` uses (it refuses to run
  before). :class:`WikiCleaner` itself holds all per-wiki settings and needs no global.
* Dates are pinned: wikiextractor fills ``CURRENTYEAR`` etc. from the clock and renders
  ``{{#time:}}`` as nothing; here every date magic word and ``#time``/``#timel`` evaluates at
  the dump's date (``dump_date``, via :mod:`pipeline.extract.wiki.dates`), or to ``""`` without one,
  never to today's.
* Guards, so no page can hang a worker (a regex cannot be interrupted from a worker thread):
  a page above ``max_page_bytes`` is rejected ``too_large`` before any regex runs; a page whose
  unclosed markup would make wikiextractor's regexes rescan it for longer than
  ``time_limit_s`` (estimated in linear time, :func:`_scan_seconds`) is rejected
  ``too_complex``; template expansion checks the same wall-clock budget as it goes
  (``timeout``); any exception is that page's ``clean_error``.
* Output follows the text model (:mod:`pipeline.common.textnorm`): one paragraph per line. Headings
  are dropped by wikiextractor itself (``keepSections``), which knows which lines are ``==``
  headings, so textnorm's heading heuristic is not applied on top of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from wikiextractor import WikiExtractor as _wx_cli
from wikiextractor import extract as _wx
from wikiextractor.extract import Extractor

from pipeline.common import textnorm
from pipeline.extract.wiki import fast as wiki_fast
from pipeline.extract.wiki.dates import as_utc, magic_words, sharp_time
from pipeline.extract.wiki.xml_reader import SiteInfo

wiki_fast.install()  # faster, equal replaceInternalLinks inside wikiextractor's clean()

DEFAULT_MAX_PAGE_BYTES = 4_000_000
DEFAULT_TIME_LIMIT_S = 20.0
TEMPLATE_NS, MODULE_NS = 10, 828


@dataclass(frozen=True)
class Templates:
    """Template definitions collected from a dump: full title -> body, and template redirects."""

    bodies: Mapping[str, str] = field(default_factory=dict)
    redirects: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CleanResult:
    """``text`` (paragraphs joined by ``"\\n"``) or, when ``reason`` is set, a rejection."""

    text: str = ""
    reason: str = ""  # "", "too_large", "too_complex", "timeout" or "clean_error"
    detail: str = ""


class PageRejected(Exception):
    """Raised inside cleaning to reject the page with ``reason`` (a guard tripped)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


# Markup wikiextractor leaves behind on malformed input (unbalanced braces or brackets, a
# table that never closes, an unclosed <ref>): removed so no document carries markup.
_REMNANT = re.compile(r"\[\[|\]\]|\{\{|\}\}|\{\||\|\}|</?ref\b[^>]*>?", re.IGNORECASE)


def _strip_remnants(paragraph: str) -> str:
    return _REMNANT.sub(" ", paragraph) if _REMNANT.search(paragraph) else paragraph


# Some of wikiextractor's regexes rescan the rest of the page from every *unclosed* opening
# (``<!--`` without ``-->``, ``<math>`` without ``</math>``, ``<span`` without ``>``...): a page
# with thousands of them takes minutes or hours and cannot be interrupted from a worker thread.
# _scan_seconds estimates that cost in linear time, from the distance between each opening and
# the next closing. Weights are CPU-seconds per character rescanned, measured with synthetic
# pages of each construct (estimates track the measured times within 0.5-6x, erring high); on
# the real samples in ../shared the largest estimate is 0.005 s, far below any budget.
_SCANS = (  # opening regex, closing regex, seconds per character scanned, squared distance?
    (re.compile(r"<!--"), re.compile(r"-->"), 2e-8, False),
    (
        re.compile(r"<(?:nowiki|math|code)\b", re.I),
        re.compile(r"</(?:nowiki|math|code)", re.I),
        2e-8,
        False,
    ),
    (re.compile(r"<\s*/?[a-z]", re.I), re.compile(r">"), 8e-8, False),
    # '&lt;syntaxhighlight .*?&gt;(.*?)&lt;/syntaxhighlight&gt;': two nested lazy scans.
    (
        re.compile(r"&lt;syntaxhighlight ", re.I),
        re.compile(r"&lt;/syntaxhighlight&gt;", re.I),
        3e-10,
        True,
    ),
)
_PLACEHOLDER_OPEN = re.compile(r"<\s*(?:math|code)\b", re.I)  # each match: one str.replace pass


def _scan_seconds(text: str) -> float:
    """Estimated CPU-seconds wikiextractor's regexes spend rescanning unclosed markup."""
    total = 0.0
    for opening, closing, weight, squared in _SCANS:
        chars, nxt = 0, -1
        for m in opening.finditer(text):
            pos = m.start()
            if nxt < pos:  # find the next closing once per run of openings: linear overall
                found = closing.search(text, m.end())
                nxt = found.start() if found else len(text)
            chars += (nxt - pos) ** 2 if squared else nxt - pos
        total += weight * chars
    opens = sum(1 for _ in _PLACEHOLDER_OPEN.finditer(text))
    return total + 1e-9 * opens * len(text)


def _scan_bound(text: str) -> float:
    """An upper bound of :func:`_scan_seconds` from counts alone (no distance can exceed the
    text's length): one C-speed pass per construct instead of a Python loop over matches."""
    n = len(text)
    total = 0.0
    for opening, _, weight, squared in _SCANS:
        found = len(opening.findall(text))
        if found:
            total += weight * found * (n * n if squared else n)
    return total + 1e-9 * len(_PLACEHOLDER_OPEN.findall(text)) * n


def _check_limits(text: str, max_bytes: int, max_seconds: float, where: str) -> None:
    """Raise :class:`PageRejected` for text over the byte cap or the estimated scan budget."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    if size > max_bytes:
        raise PageRejected("too_large", f"{size} bytes {where}")
    if _scan_bound(text) <= max_seconds:  # nearly every real page: no exact estimate needed
        return
    cost = _scan_seconds(text)
    if cost > max_seconds:
        raise PageRejected("too_complex", f"about {cost:.0f} s of markup scans {where}")


class _PinnedExtractor(Extractor):
    """wikiextractor's Extractor with dates taken from ``now`` and a time budget."""

    now: datetime | None
    deadline: float
    limits: tuple[int, float]  # max UTF-8 bytes, max estimated scan seconds
    _expanded = False  # True between our own expansion and clean()'s call to expandTemplates
    drop_plain = False  # no template definitions: a plain call expands to "" (fast path)

    def clean_text(self, text, mark_headers=False, expand_templates=True, html_safe=True):
        # Extractor.clean_text minus its time.strftime() calls, with the expansion done first
        # so the guards also see what templates produced.
        self.magicWords["namespace"] = self.title[: max(0, self.title.find(":"))]
        self.magicWords["pagename"] = self.title
        self.magicWords["fullpagename"] = self.title
        if self.now is not None:  # without a dump date, date words stay unknown: ""
            self.magicWords.values.update(magic_words(self.now))
        text = self.expandTemplates(text)
        _check_limits(text, *self.limits, "after template expansion")
        self._expanded = True  # clean()'s own top-level expansion becomes a no-op
        text = _wx.clean(self, text, expand_templates=True, html_safe=html_safe)
        return _wx.compact(text, mark_headers=mark_headers, extractor=self)

    def expandTemplates(self, wikitext):  # noqa: N802 (wikiextractor's name)
        if self._expanded:
            self._expanded = False
            return wikitext
        return super().expandTemplates(wikitext)

    def expandTemplate(self, body):  # noqa: N802 (wikiextractor's name)
        if time.monotonic() > self.deadline:
            raise PageRejected("timeout", f"template expansion of {self.title!r} ran too long")
        if self.drop_plain and wiki_fast.is_plain_call(body, self.magicWords.values):
            return ""  # what wikiextractor returns for it, without splitting its arguments
        if body[:64].lstrip()[:5].lower() == "#time":
            parts = _wx.splitParts(body)
            head = self.expandTemplates(parts[0].strip())
            name, _, fmt = head.partition(":")
            if name.strip().lower() in ("#time", "#timel"):
                if self.now is None:
                    return ""
                date = self.expandTemplates(parts[1]) if len(parts) > 1 else ""
                return sharp_time(fmt, date, self.now)
        return super().expandTemplate(body)


class WikiCleaner:
    """Cleans pages of one wiki. Immutable after construction; safe to share across threads.

    Args:
        siteinfo: the dump's ``<siteinfo>`` (namespace names); ``None`` means English defaults.
        keep_headings: keep section headings as their own paragraphs.
        expand_templates: expand ``{{...}}`` from ``templates`` instead of dropping them.
        templates: definitions from :func:`collect_templates` (expansion mode only).
        dump_date: the date every date magic word and ``#time`` evaluates to. ``None``: they
            render as ``""`` (never the clock's date); :mod:`pipeline.extract.wiki.dump` always
            passes one when expanding.
        max_page_bytes: pages with more UTF-8 bytes of wikitext are rejected ``too_large``.
        time_limit_s: per-page budget in seconds: estimated regex cost above it is rejected
            ``too_complex``, template expansion running past it ``timeout``.
    """

    def __init__(
        self,
        siteinfo: SiteInfo | None = None,
        *,
        keep_headings: bool = False,
        expand_templates: bool = False,
        templates: Templates | None = None,
        dump_date: datetime | None = None,
        max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    ):
        names = dict(siteinfo.namespaces) if siteinfo else {}
        self.template_namespace = names.get(TEMPLATE_NS) or "Template"
        self.module_namespace = names.get(MODULE_NS) or "Module"
        self.keep_headings = keep_headings
        self.expand_templates = expand_templates
        # Without expansion every template call still goes through wikiextractor's expander,
        # with no definitions: each {{...}} becomes "" but parser functions (#if, #switch)
        # keep their literal branches. This is what the wikiextractor CLI's --no-templates
        # does, and it survives unbalanced braces that a plain {{...}} drop would run past,
        # swallowing the rest of the page.
        self.templates = (templates or Templates()) if expand_templates else Templates()
        # with no definitions a plain call is "" (wiki_fast.is_plain_call's fast path)
        self._drop_plain = not (self.templates.bodies or self.templates.redirects)
        self.now = as_utc(dump_date) if dump_date else None
        self.max_page_bytes = max_page_bytes
        self.time_limit_s = time_limit_s
        self._kwargs = {
            "templatePrefix": self.template_namespace + ":",
            # Namespace names a template call may name explicitly ({{Wikipedia:Foo}}).
            "knownNamespaces": {"Template"} | {n for n in names.values() if n},
            # The CLI's choice without --links: <a> tags are dropped with their markup.
            "ignored_tag_patterns": list(_wx._DEFAULT_IGNORED_TAG_PATTERNS) + [_wx.ignoreTag("a")],
            "keepLinks": False,
            "keepSections": keep_headings,
        }

    def clean(self, wikitext: str, title: str = "", page_id: int = -1) -> CleanResult:
        """Clean one page; never raises for a page's content."""
        limits = (self.max_page_bytes, self.time_limit_s)
        try:
            _check_limits(wikitext, *limits, "of wikitext")
            extractor = _PinnedExtractor(
                str(page_id),
                "",
                "",
                title,
                [wikitext],
                templates=self.templates.bodies,
                redirects=self.templates.redirects,
                **self._kwargs,
            )
            extractor.now = self.now
            extractor.drop_plain = self._drop_plain
            extractor.deadline = time.monotonic() + self.time_limit_s
            extractor.limits = limits
            lines = extractor.clean_text(wikitext, expand_templates=True, html_safe=False)
        except PageRejected as exc:
            return CleanResult(reason=exc.reason, detail=str(exc))
        except Exception as exc:  # one page's failure is that page's rejection
            return CleanResult(reason="clean_error", detail=f"{type(exc).__name__}: {exc}")
        paragraphs = [_strip_remnants(line) for line in lines]
        # keep_headings=True: wikiextractor already dropped the real headings (see module doc).
        return CleanResult(text=textnorm.join_paragraphs(paragraphs, keep_headings=True))


def collect_templates(pages: Iterable) -> Templates:
    """Template definitions and template redirects from a dump's pages (ns 10).

    ``pages`` yields :class:`pipeline.extract.wiki.xml_reader.Page`; pages flagged
    ``too_large`` are skipped.
    Bodies are resolved as MediaWiki transcludes them (``<noinclude>`` dropped,
    ``<onlyinclude>`` honoured) by wikiextractor's ``resolve_template_page``. Memory: the whole
    result is held (enwiki: an estimated 1 GB).
    """
    bodies: dict[str, str] = {}
    redirects: dict[str, str] = {}
    for page in pages:
        if page.ns != TEMPLATE_NS or page.too_large:
            continue
        resolved = _wx.resolve_template_page(page.title, [page.text])
        if resolved is None:
            continue
        kind, value = resolved
        (redirects if kind == "redirect" else bodies)[page.title] = value
    return Templates(bodies=bodies, redirects=redirects)


# -- process-wide configuration (one call per worker) ----------------------------------------

_default: WikiCleaner | None = None


def configure(siteinfo: SiteInfo | None = None, **options) -> WikiCleaner:
    """Set wikiextractor's module state and this process's default :class:`WikiCleaner`.

    ``options`` are :class:`WikiCleaner`'s keyword arguments. wikiextractor's CLI reader
    (``collect_pages``) yields no page while ``WikiExtractor.templateNamespace`` is empty (every
    title starts with ``""``); it is set here from ``siteinfo`` (namespace 10) so any in-process
    use of wikiextractor sees the same namespaces as our cleaner. Returns the new cleaner.
    """
    global _default
    cleaner = WikiCleaner(siteinfo, **options)
    _wx_cli.templateNamespace = cleaner.template_namespace
    _wx_cli.moduleNamespace = cleaner.module_namespace
    _default = cleaner
    return cleaner


def configured() -> WikiCleaner:
    """The cleaner set by :func:`configure`; raises ``RuntimeError`` before that call."""
    if _default is None:
        raise RuntimeError(
            "pipeline.extract.wiki.clean.configure() must be called first (DoFn.setup)"
        )
    return _default


def clean_wikitext(wikitext: str, title: str = "", page_id: int = -1) -> CleanResult:
    """Clean one page with the configured cleaner (see :func:`configure`)."""
    return configured().clean(wikitext, title, page_id)
