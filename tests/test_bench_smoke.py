"""A tiny run of the benchmark suite (bench/run.py): it runs end to end and writes its figures.

The real runs (10 million lines, national history) are on demand: see docs/performance.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.run import main, run_measured_memory


def test_a_tiny_benchmark_run_writes_its_figures(tmp_path):
    output, doc = tmp_path / "latest.json", tmp_path / "performance.md"
    args = ["--lines", "2000", "--runs", "1", "--weekly-starts", "3", "--scales", "0.03",
            "--page-requests", "2", "--as-of-visits", "2", "--output", str(output), "--doc", str(doc),
            "--workdir", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    results = json.loads(output.read_text())
    for fmt in ("csv", "parquet"):
        load = results["load"][fmt]
        # 2,000 lines of other medicines plus the programme's own lines.
        assert load["lines"] > 2000
        assert load["load_seconds"]["median"] > 0 and load["floor_seconds"]["median"] > 0
        assert load["peak_rss_bytes"] > 0
        assert load["peak_rss_plus_shm_bytes"] >= load["peak_rss_bytes"]
        assert load["load_wall_seconds"]["median"] >= load["load_seconds"]["median"]
    (history,) = results["history"]
    assert history["scale"] == 0.03 and history["programmes"] > 0
    # The history holds every month but the last; the last is loaded on top of it.
    assert history["history_files"] >= 30
    assert history["incremental_ratio"] > 0 and history["marts_rebuild_seconds"]["runs"] == 1
    assert history["report_wall_seconds"]["runs"] == 1
    assert set(history["pages"]) == {"/", "/outcomes", "/fees", "/compliance", "/regions",
                                     "/data", "/methodology", "as_of"}  # fmt: skip
    visits = history["pages"]["as_of"]
    # Two new as-of dates, the last days of the two months before the latest month.
    assert len(visits["dates"]) == 2 and len(set(visits["dates"])) == 2
    assert all(d.endswith(("-28", "-29", "-30", "-31")) for d in visits["dates"])
    assert visits["server_rss_after_bytes"] > 0
    assert results["cold"]["wall_seconds"]["median"] > 0
    text = doc.read_text()
    assert "| csv |" in text and "| parquet |" in text and "| `/fees` |" in text
    assert "| 0.03× |" in text and "## Demo cold start" in text


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_peak_memory_counts_what_a_process_puts_on_dev_shm(tmp_path):
    """A child that writes 64 MiB to a file in /dev/shm and holds it 0.5 s has a small RSS
    (the bytes go to the file, not its heap), but its peak RSS + shared memory is at least
    64 MiB more than its RSS: that RAM is what ru_maxrss alone does not show (issue 20)."""
    name = f"/dev/shm/bench-smoke-{tmp_path.name}"
    script = (
        "import time\n"
        f"f = open({name!r}, 'wb')\n"
        "chunk = b'x' * 2**20\n"
        "for _ in range(64): f.write(chunk)\n"
        "f.flush(); time.sleep(0.5); f.close()\n"
        f"import os; os.unlink({name!r})\n"
    )
    _, memory, _ = run_measured_memory([sys.executable, "-c", script])
    assert memory["peak_shm_bytes"] >= 64 * 2**20
    assert memory["peak_rss_plus_shm_bytes"] >= memory["peak_rss_bytes"] + 64 * 2**20 - 2**20


def test_side_by_side_loads_of_two_checkouts(tmp_path):
    """bench/ab.py on this checkout twice (its .venv, as the README installs it): each load
    lands in a new warehouse, the first checkout's CPU ratio is 1 by definition, and every
    series has one value per round."""
    from bench.ab import compare
    from etl.synthetic.generate import generate

    root = Path(__file__).resolve().parent.parent
    if not (root / ".venv" / "bin" / "benzo-monitor").exists():
        pytest.skip("no .venv in the checkout (the README's install line makes one)")
    (export,) = generate(tmp_path / "x", weekly_starts=1, split="single").files
    results = compare({"a": root, "b": root}, [export], runs=2, workdir=tmp_path)
    by_name = results[str(export)]
    assert by_name["a"]["cpu_ratio"] == 1.0
    assert by_name["b"]["cpu"]["min"] > 0 and by_name["b"]["ledger"]["max"] > 0
    assert by_name["a"]["wall"]["min"] >= by_name["a"]["ledger"]["min"]
