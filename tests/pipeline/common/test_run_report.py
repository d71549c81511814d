from pipeline.common import run_report
from pipeline.common.records import REJECTED, SKIPPED, Document, Dropped


def _doc(i, src="books"):
    return Document(f"{i:016x}", src, "a.txt", "t", "text")


def test_counts_add_up_and_merge_is_order_independent():
    a, b = run_report.empty(), run_report.empty()
    run_report.count(a, _doc(1))
    run_report.count(a, Dropped("2", "wikipedia", "w.xml", "R", SKIPPED, "redirect"))
    run_report.count(b, Dropped("3", "wikipedia", "w.xml", "S", REJECTED, "too_short"))
    run_report.count(b, _doc(4, "wikipedia"))
    b["cuts"].append({"path": "w.xml", "detail": "no </mediawiki>"})
    m1, m2 = run_report.merge([a, b]), run_report.merge([b, a])
    assert m1 == m2
    assert (m1["docs_in"], m1["docs_out"]) == (4, 2)
    assert m1["skipped"] == {"redirect": 1} and m1["rejected"] == {"too_short": 1}
    assert run_report.balanced(m1)
    run_report.reclassify(m1, "wikipedia", "duplicate")
    assert run_report.balanced(m1) and m1["rejected"]["duplicate"] == 1
    assert m1["by_source"]["wikipedia"] == {"docs_in": 3, "docs_out": 0}


def test_unbalanced_report_detected():
    r = run_report.empty()
    run_report.count(r, _doc(1))
    r["docs_in"] += 1
    assert not run_report.balanced(r)


def test_run_report_keeps_extract_at_top_and_stages_by_name(tmp_path):
    r = run_report.empty()
    run_report.count(r, _doc(1))
    run_report.update_run_report(str(tmp_path), "extract", r)
    out = run_report.update_run_report(str(tmp_path), "segment", {"sentences": 3})
    assert out["docs_in"] == 1 and out["segment"] == {"sentences": 3}
    assert run_report.load_json(str(tmp_path / "report.json")) == out
