"""A tiny run of the benchmark suite (bench/run.py): it runs end to end and writes its figures.

The real runs (10 million lines, national history) are on demand: see docs/performance.md.
"""

from __future__ import annotations

import json

from bench.run import main


def test_a_tiny_benchmark_run_writes_its_figures(tmp_path):
    output, doc = tmp_path / "latest.json", tmp_path / "performance.md"
    args = ["--lines", "2000", "--runs", "1", "--weekly-starts", "3", "--scales", "0.03",
            "--page-requests", "2", "--output", str(output), "--doc", str(doc),
            "--workdir", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    results = json.loads(output.read_text())
    for fmt in ("csv", "parquet"):
        load = results["load"][fmt]
        # 2,000 lines of other medicines plus the programme's own lines.
        assert load["lines"] > 2000
        assert load["load_seconds"]["median"] > 0 and load["floor_seconds"]["median"] > 0
        assert load["peak_rss_bytes"] > 0
    (history,) = results["history"]
    assert history["scale"] == 0.03 and history["programmes"] > 0
    # The history holds every month but the last; the last is loaded on top of it.
    assert history["history_files"] >= 30
    assert history["incremental_ratio"] > 0 and history["marts_rebuild_seconds"]["runs"] == 1
    assert history["report_wall_seconds"]["runs"] == 1
    assert set(history["pages"]) == {"/", "/outcomes", "/fees", "/compliance", "/regions",
                                     "/data", "/methodology"}  # fmt: skip
    assert results["cold"]["wall_seconds"]["median"] > 0
    text = doc.read_text()
    assert "| csv |" in text and "| parquet |" in text and "| `/fees` |" in text
    assert "| 0.03× |" in text and "## Demo cold start" in text
