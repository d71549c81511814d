"""pipeline.extract.wiki.clean: configuration, pinned dates, guards and rejections."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from wikiextractor import WikiExtractor
from wikiextractor import extract as _wx

from pipeline.extract.wiki import clean as wiki_clean
from pipeline.extract.wiki import fast as wiki_fast
from pipeline.extract.wiki.clean import WikiCleaner, collect_templates, sharp_time
from pipeline.extract.wiki.xml_reader import Page
from tests.pipeline.extract.wiki.test_xml_reader import (
    SAMPLE_PATHS,
    VIWIKI,
    read_file,
    sample,
    xml_bytes,
)

DUMP = datetime(2016, 5, 1, 7, 8, 29, tzinfo=timezone.utc)  # a Sunday


def page(title: str, text: str, ns: int = 10) -> Page:
    return Page(1, ns, title, False, "", 1, "2016-05-01T07:08:29Z", text, len(text), False)


@pytest.fixture
def restore_wikiextractor(monkeypatch):
    """configure() sets process-wide state: put it back after each test."""
    monkeypatch.setattr(wiki_clean, "_default", None)
    monkeypatch.setattr(WikiExtractor, "templateNamespace", WikiExtractor.templateNamespace)
    monkeypatch.setattr(WikiExtractor, "moduleNamespace", WikiExtractor.moduleNamespace)


def test_clean_requires_configure(restore_wikiextractor):
    with pytest.raises(RuntimeError, match="configure"):
        wiki_clean.clean_wikitext("Some '''bold''' text.")
    wiki_clean.configure()
    assert wiki_clean.clean_wikitext("Some '''bold''' [[Link|text]].").text == "Some bold text."


def test_configure_sets_wikiextractor_module_state(restore_wikiextractor):
    # wikiextractor's own page reader yields nothing until its template namespace is set.
    def cli_pages():
        lines = io.StringIO(xml_bytes(VIWIKI).decode("utf-8"))
        return [title for _, _, title, _ in WikiExtractor.collect_pages(lines)]

    WikiExtractor.templateNamespace = ""
    assert cli_pages() == []
    _, reader = read_file(sample(VIWIKI))
    cleaner = wiki_clean.configure(reader.siteinfo)
    assert WikiExtractor.templateNamespace == "Bản mẫu" == cleaner.template_namespace
    assert len(cli_pages()) == 6  # SOURCES.md: the CLI writes 6 documents for this sample
    assert wiki_clean.configured() is cleaner


def test_configure_template_namespace_is_effective(restore_wikiextractor):
    _, reader = read_file(sample(VIWIKI))
    templates = collect_templates([page("Bản mẫu:Chào", "xin chào thế giới")])
    text = "Mở đầu {{chào}} kết thúc."
    vi = wiki_clean.configure(reader.siteinfo, expand_templates=True, templates=templates)
    assert vi.clean(text).text == "Mở đầu xin chào thế giới kết thúc."
    en = wiki_clean.configure(None, expand_templates=True, templates=templates)
    assert en.clean(text).text == "Mở đầu kết thúc."  # looked up as Template:Chào


def test_templates_dropped_by_default():
    templates = collect_templates([page("Template:Greet", "hello world")])
    text = "A {{Greet}} B {{#if: yes | kept | lost}} C."
    assert WikiCleaner(templates=templates).clean(text).text == "A B kept C."
    expanded = WikiCleaner(templates=templates, expand_templates=True, dump_date=DUMP)
    assert expanded.clean(text).text == "A hello world B kept C."


def test_collect_templates_resolves_bodies_and_redirects():
    templates = collect_templates(
        [
            page("Template:Box", "shown<noinclude>doc only</noinclude>"),
            page("Template:Only", "x<onlyinclude>inner</onlyinclude>y"),
            page("Template:Alias", "#REDIRECT [[Template:Box]]"),
            page("Article", "not a template", ns=0),
        ]
    )
    assert dict(templates.bodies) == {"Template:Box": "shown", "Template:Only": "inner"}
    assert dict(templates.redirects) == {"Template:Alias": "Template:Box"}
    cleaner = WikiCleaner(templates=templates, expand_templates=True, dump_date=DUMP)
    assert cleaner.clean("Say {{alias}} now.").text == "Say shown now."


def test_dates_pinned_to_dump_date():
    words = [
        "CURRENTYEAR",
        "CURRENTMONTH",
        "CURRENTMONTHNAME",
        "CURRENTDAY",
        "CURRENTDAY2",
        "CURRENTDAYNAME",
        "CURRENTTIME",
        "LOCALYEAR",
        "LOCALTIMESTAMP",
    ]
    body = "; ".join(f"{w}={{{{{w}}}}}" for w in words)
    body += "; T1={{#time:Y-m-d}}; T2={{#time: j F Y | now}}; T3={{#timel:D H:i}}"
    body += "; T4={{#time:Y|2001-02-03}}; T5={{#time:Y|+1 day}}; end."
    templates = collect_templates([page("Template:Stamp", body)])
    cleaner = WikiCleaner(templates=templates, expand_templates=True, dump_date=DUMP)
    text = cleaner.clean("{{Stamp}}").text
    got = dict(kv.strip().split("=", 1) for kv in text.split(";")[:-1])
    d = DUMP  # expected values computed with datetime, independently of wiki_clean
    assert got == {
        "CURRENTYEAR": d.strftime("%Y"),
        "CURRENTMONTH": d.strftime("%m"),
        "CURRENTMONTHNAME": "May",
        "CURRENTDAY": str(d.day),
        "CURRENTDAY2": d.strftime("%d"),
        "CURRENTDAYNAME": "Sunday",
        "CURRENTTIME": d.strftime("%H:%M"),
        "LOCALYEAR": d.strftime("%Y"),
        "LOCALTIMESTAMP": d.strftime("%Y%m%d%H%M%S"),
        "T1": d.date().isoformat(),
        "T2": "1 May 2016",
        "T3": "Sun 07:08",
        "T4": "2001",
        "T5": "",  # relative dates are not evaluated
    }
    # Without a dump date the same words render empty: still never the clock's date.
    undated = WikiCleaner(templates=templates, expand_templates=True).clean("{{Stamp}}").text
    today = datetime.now(timezone.utc)
    assert str(today.year) not in undated and "CURRENTYEAR=;" in undated


def test_sharp_time_formats():
    when = datetime(2024, 2, 29, 13, 5, 9, tzinfo=timezone.utc)
    assert sharp_time("Y-m-d H:i:s", "", when) == when.strftime("%Y-%m-%d %H:%M:%S")
    assert sharp_time('"Year" Y, \\Y, xg xnY', "", when) == "Year 2024, Y, February 2024"
    assert sharp_time("j M Y (l)", "4 July 1976", when) == "4 Jul 1976 (Sunday)"
    assert sharp_time("U", "1970-01-02", when) == "86400"
    assert sharp_time("Y", "next tuesday", when) == ""


def test_headings_dropped_unless_kept():
    text = "Intro sentence here.\n\n== History ==\nIt began long ago.\n\n=== Early ===\nFirst."
    assert WikiCleaner().clean(text).text == "Intro sentence here.\nIt began long ago.\nFirst."
    kept = WikiCleaner(keep_headings=True).clean(text).text
    assert kept == "Intro sentence here.\nHistory.\nIt began long ago.\nEarly.\nFirst."


def test_real_wikiextractor_exception_is_one_page_rejection():
    # Deeply nested parser functions overflow wikiextractor's recursive expander.
    nested = "Before. " + "{{#if:x|" * 500 + "a" + "}}" * 500 + " after."
    cleaner = WikiCleaner()
    result = cleaner.clean(nested, "Nested", 12)
    assert result.reason == "clean_error" and result.text == ""
    assert result.detail.startswith("RecursionError")
    assert cleaner.clean("The next page is fine.").text == "The next page is fine."


def test_forced_exception_is_clean_error(monkeypatch):
    def boom(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(wiki_clean._wx, "compact", boom)
    assert WikiCleaner().clean("text").detail == "ValueError: boom"


def test_too_large_rejected_before_cleaning(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("a too-large page reached wikiextractor")

    monkeypatch.setattr(wiki_clean._wx, "clean", must_not_run)
    cleaner = WikiCleaner(max_page_bytes=100)
    result = cleaner.clean("é" * 51)  # 51 characters, 102 UTF-8 bytes
    assert (result.reason, result.detail) == ("too_large", "102 bytes of wikitext")


def test_template_expansion_time_budget():
    templates = collect_templates([page("Template:T", "x")])
    cleaner = WikiCleaner(templates=templates, expand_templates=True, time_limit_s=1e-9)
    result = cleaner.clean("A {{T}} b.", "Slow")
    assert result.reason == "timeout" and "Slow" in result.detail


def test_no_markup_remnants_from_broken_markup():
    # Unbalanced markup as found in real pages (a {{!} typo, a stray [[, an open table).
    text = "A {{Cite web|title=Mean {{!}x}} b [[c d.\n{|\n| cell\n|}\nE <ref>f</ref> g {{ h."
    out = WikiCleaner().clean(text).text
    for mark in ("[[", "{{", "<ref", "{|", "|}"):
        assert mark not in out
    assert out.startswith("A ") and "g" in out


@pytest.mark.parametrize(
    "unit", ["<!-- ", "<nowiki>", "<span ", "<br", "&lt;syntaxhighlight a&gt;"]
)
def test_pathological_unclosed_markup_rejected_before_cleaning(monkeypatch, unit):
    # Thousands of unclosed openings make wikiextractor's regexes rescan the page from each
    # one (hours for a few MB, and a regex cannot be interrupted in a worker thread).
    def must_not_run(*args, **kwargs):
        raise AssertionError("a pathological page reached wikiextractor")

    monkeypatch.setattr(wiki_clean._wx, "clean", must_not_run)
    result = WikiCleaner().clean("Start. " + unit * (300_000 // len(unit)))
    assert result.reason == "too_complex" and result.detail.endswith("scans of wikitext")


@pytest.mark.parametrize("name", sorted({p.name for p in SAMPLE_PATHS}))
def test_scan_bound_is_an_upper_bound(name):
    pages, _ = read_file(next(p for p in SAMPLE_PATHS if p.name == name))
    texts = [p.text for p in pages if not p.too_large] + [
        "a <!-- b <span c " * 50 + "-->" + " d &lt;syntaxhighlight x&gt; <math> <code>" * 20
    ]
    for text in texts:
        assert wiki_clean._scan_bound(text) >= wiki_clean._scan_seconds(text)


def test_ordinary_unclosed_markup_is_still_cleaned():
    words = "Plain words in a long article. " * 2000
    for text in (f"{words}<!-- never closed {words}", f"{words}<nowiki>open {words}"):
        result = WikiCleaner().clean(text)
        assert result.reason == "" and result.text.startswith("Plain words")


def test_limits_apply_to_expanded_text():
    templates = collect_templates(
        [page("Template:Big", "many words " * 1000), page("Template:Open", "<span ")]
    )
    cleaner = WikiCleaner(
        templates=templates, expand_templates=True, dump_date=DUMP, max_page_bytes=1_000_000
    )
    big = cleaner.clean("{{Big}} " * 200)  # 1.6 KB of wikitext, 2.2 MB once expanded
    assert big.reason == "too_large" and big.detail.endswith("after template expansion")
    opened = cleaner.clean("{{Open}}" * 50_000)
    assert opened.reason == "too_complex" and opened.detail.endswith("after template expansion")
    assert cleaner.clean("{{Big}}").text.startswith("many words many words")


@pytest.mark.parametrize("name", sorted({p.name for p in SAMPLE_PATHS}))
def test_fast_paths_change_no_page(name, monkeypatch):
    """pipeline.extract.wiki.fast (plain template calls dropped without splitting their arguments,
    one-pass link replacement) gives, page for page, the text of wikiextractor's own code
    (every article of every real sample)."""
    path = next(p for p in SAMPLE_PATHS if p.name == name)
    pages, reader = read_file(path)
    articles = [p for p in pages if p.ns == 0 and not p.redirect and not p.too_large]
    cleaner = WikiCleaner(reader.siteinfo)
    fast = [cleaner.clean(p.text, p.title, p.page_id) for p in articles]
    monkeypatch.setattr(wiki_fast, "ENABLED", False)
    slow = [cleaner.clean(p.text, p.title, p.page_id) for p in articles]
    assert fast == slow and any(r.text for r in fast)


def test_plain_call_detection():
    words = {"currentyear": "2020", "pagename": "X"}
    assert wiki_fast.is_plain_call("cite web|url=http://x|title=T", words)
    assert wiki_fast.is_plain_call(" Infobox person \n|name=A", words)
    for body in ("#if: a|b|c", "lc:ABC", "CURRENTYEAR", "subst:foo|x", "a{{b}}|c", "[[x]]|y"):
        assert not wiki_fast.is_plain_call(body, words), body


@pytest.mark.parametrize(
    "text",
    [
        "a [[b]] c [[d|e]]s f",
        "]] stray [[x|[[y]] z]] and [[unclosed",
        "[[File:a.jpg|thumb|a [[nested|link]] caption]] after",
        "[[[[doubled]]]] [[a|b|c]] [[:Category:X]] [[ ]]",
    ],
)
def test_replace_internal_links_equals_wikiextractor(text, monkeypatch):
    extractor = wiki_clean._PinnedExtractor("1", "", "", "T", [text])
    fast = wiki_fast.replace_internal_links(text, extractor)
    monkeypatch.setattr(wiki_fast, "ENABLED", False)
    assert fast == wiki_fast.replace_internal_links(text, extractor)
    assert list(wiki_fast.balanced_links(text)) == list(_wx.findBalanced(text, ["[["], ["]]"]))


def _soup(rng, n: int) -> str:
    """Random bracket soup: the inputs where link matching has the most cases."""
    return "".join(
        rng.choice(["{", "}", "[", "]", "|", "a", " ", "{{", "}}", "[[", "]]"]) for _ in range(n)
    )


def test_link_matching_equals_wikiextractor_on_random_soup():
    import random

    rng = random.Random(7)
    extractor = wiki_clean._PinnedExtractor("1", "", "", "T", [""])
    for _ in range(3000):
        text = _soup(rng, rng.randint(0, 40))
        assert list(wiki_fast.balanced_links(text)) == list(
            _wx.findBalanced(text, ["[["], ["]]"])
        ), text
        fast = wiki_fast.replace_internal_links(text, extractor)
        assert fast == wiki_fast._original_replace_internal_links(text, extractor), text
