"""The benchmark scripts run end to end on a small catalog (their figures are for
docs/performance.md; here only that they run and report what they say)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_search_bench_reports_every_method_at_the_dimension_asked(tmp_path):
    out = tmp_path / "search.json"
    subprocess.run(
        [
            sys.executable, str(BENCHMARKS / "search_bench.py"), "--sizes", "3000",
            "--queries", "20", "--warmup", "5", "--dim", "288",
            "--workdir", str(tmp_path / "work"), "--out", str(out),
        ],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    (size,) = json.loads(out.read_text())["sizes"]
    assert size["n"] == 3000 and size["dim"] == 288
    assert size["raw_vectors_mb"] == pytest.approx(3000 * 288 * 4 / 2**20, abs=0.1)
    assert 0.005 < size["one_percent_word_fraction"] < 0.02
    methods = ("visual", "arithmetic", "filter", "combined", "filter-hard-1%", "filter-hard")
    assert set(size["methods"]) == set(methods)
    for name in methods:
        assert size["methods"][name]["recall@10"] >= 0.9, name
