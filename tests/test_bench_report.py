"""`make bench` writes docs/benchmark.md and the README's figures at the end of a long run: both must take them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import run
from tools.reports import generated_blocks


def _rows() -> list[dict[str, Any]]:
    def row(n: int, program: float, floor: float, replay: float) -> dict[str, Any]:
        return {
            "clinics": n,
            "program": {"seconds": program, "resources": 30 * n, "kubernetes": 24 * n, "rss_mib": 2.0 * n + 200},
            "floor": {"seconds": floor},
            "replay": {"seconds": replay},
        }

    return [row(100, 20.0, 5.0, 8.0), row(1000, 200.0, 50.0, 80.0)]


def test_the_readme_has_the_markers_the_bench_writes_between() -> None:
    readme = run.README.read_text(encoding="utf-8")
    replaced = generated_blocks.replace_block(readme, run.README_TARGET, run.README_BLOCK, "figures")
    assert "figures" in replaced and replaced != readme


def test_the_readme_block_states_the_ratios_of_the_run() -> None:
    rows = _rows()
    block = run.readme_block(rows, run.marginal(rows), "2 CPUs")
    # 1,000 clinics: 200 s against a 50 s floor; the marginal clinic 180 s / 900 against 45 s / 900.
    assert "| 1,000 | 30,000 | 200.00 | 0.200 | 2.1 GiB | 50.00 | 4.00 |" in block
    assert "One more clinic costs 200 ms against 50 ms" in block
    assert "(**4.0x**)" in block and "(**2.5x**)" in block


def test_a_report_keeps_the_notes_and_rewrites_the_readme_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, readme = tmp_path / "benchmark.md", tmp_path / "README.md"
    report.write_text("old table\n<!-- notes -->\n## Reading the figures\nkept\n", encoding="utf-8")
    begin, end = generated_blocks.begin(run.README_TARGET, run.README_BLOCK), generated_blocks.end(run.README_BLOCK)
    readme.write_text(f"# x\n{begin}\nold\n{end}\nafter\n", encoding="utf-8")
    monkeypatch.setattr(run, "REPORT", report)
    monkeypatch.setattr(run, "README", readme)
    monkeypatch.setattr(run, "PROJECT_DIR", tmp_path)
    rows = _rows()
    run.write_report(rows, run.marginal(rows))
    text = report.read_text(encoding="utf-8")
    assert "old table" not in text and text.endswith("<!-- notes -->\n## Reading the figures\nkept\n")
    new = readme.read_text(encoding="utf-8")
    assert "\nold\n" not in new and "| 1,000 |" in new and new.endswith(f"{end}\nafter\n")
