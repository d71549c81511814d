"""The pure parts of --expand-templates' sharing step and of the dedup join (the Beam wiring
runs in test_transforms.py on the FnApiRunner and in tests/pipeline/test_dask_runner.py)."""

from __future__ import annotations

from pipeline.extract import template_scan
from pipeline.extract.transforms import duplicate_losers
from pipeline.extract.units import Unit


def test_shared_templates_document_and_units_in_input_order(tmp_path):
    wiki = Unit("wikipedia", "b/dump.xml", "/in/b/dump.xml")
    book = Unit("books", "a.txt", "/in/a.txt")
    order = template_scan.unit_order(wiki)
    items = [
        (template_scan.UNIT, wiki),
        (template_scan.DEFINITION, ("Template:Born", (order, template_scan.BODY, "born {{{1}}}"))),
        (template_scan.DEFINITION, ("Template:Alias", (order, "redirect", "Template:Born"))),
        (template_scan.NEWEST, "2010-01-01T00:00:00Z"),
        (template_scan.NEWEST, "2018-05-05T10:00:00Z"),
        (template_scan.UNIT, book),
    ]
    doc, units = template_scan.shared_templates(items)
    assert doc == {
        "bodies": {"Template:Born": "born {{{1}}}"},
        "redirects": {"Template:Alias": "Template:Born"},
        "newest": "2018-05-05T10:00:00Z",
    }
    assert units == [book, wiki]  # sorted by relpath, whatever order they were collected in
    path = str(tmp_path / "templates-x.json")
    (tmp_path / "templates-x.json").write_bytes(template_scan.templates_json(doc))
    wiki_context = template_scan.load_wiki_context(path)
    assert wiki_context.newest == "2018-05-05T10:00:00Z"
    assert wiki_context.templates.bodies == doc["bodies"]
    assert wiki_context.templates.redirects == doc["redirects"]
    assert template_scan.load_wiki_context(path) is wiki_context  # read once per process
    assert template_scan.shared_templates([])[0]["newest"] == ""  # no Wikipedia unit


def test_duplicate_losers_go_to_the_unit_that_holds_them():
    found = [("b", "u2"), ("a", "u1"), ("c", "u1"), ("a", "u3"), ("c", "u1")]
    # "a" wins (smallest id) wherever it is; each other id is dropped in its own unit, once
    assert sorted(duplicate_losers(("hash", found))) == [("u1", ("c", "a")), ("u2", ("b", "a"))]
    assert list(duplicate_losers(("hash", [("a", "u1")]))) == []
