"""bench/run.py rewrites docs/performance.md but keeps the sections measured by hand after its
marker (the `nowcast`/`budget` timings of issue 16)."""

from __future__ import annotations

from bench.run import HAND_MEASURED, write_doc

RESULTS = {
    "machine": {"platform": "p", "cpus": 2, "python": "3", "duckdb": "1", "benzo_monitor": "0"},
    "settings": {"runs": 1},
}


def test_hand_measured_sections_are_kept(tmp_path):
    doc = tmp_path / "performance.md"
    write_doc(RESULTS, doc)
    assert HAND_MEASURED not in doc.read_text(encoding="utf-8")
    tail = f"{HAND_MEASURED}\n\n## By hand\n\n| a | b |\n"
    doc.write_text(doc.read_text(encoding="utf-8") + "\nold table\n" + tail, encoding="utf-8")
    write_doc(RESULTS, doc)
    text = doc.read_text(encoding="utf-8")
    assert text.endswith(tail)
    assert text.count(HAND_MEASURED) == 1
    assert "old table" not in text
