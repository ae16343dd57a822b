"""Issue 15: the tools operators run by hand: `make help`, `make plan` in a pipe, the plan table (the clinic card:
test_clinic_card.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from orca_platform.model.catalogue import load_catalogue
from orca_platform.model.tenants import load_tenants
from orca_platform.plan.capacity import capacity_rows
from tests.orca_test_support import PROJECT_DIR, load_settings
from tools.reports import plan

MAKEFILE = PROJECT_DIR / "Makefile"


def makefile_targets() -> set[str]:
    """Every target a person can type: the .PHONY list and every rule whose name is not a file path."""
    text = MAKEFILE.read_text(encoding="utf-8")
    phony = set(re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE).group(1).split())  # type: ignore[union-attr]
    rules = {m.group(1) for m in re.finditer(r"^([a-zA-Z0-9_-]+):(?!=)", text, re.MULTILINE)}
    return phony | rules


def test_make_help_lists_every_target() -> None:
    done = subprocess.run(
        ["make", "-s", "help"],  # noqa: S607 - make from PATH, as a person runs it
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    listed = {m.group(1) for m in re.finditer(r"^\s+make (\S+)\s+\S", out, re.MULTILINE)}
    targets = makefile_targets()
    assert "plan" in targets and "help" in targets  # the parser sees the Makefile's rules
    assert targets - listed == set(), "targets without a '## ' description on their rule line"
    assert listed - targets == set()


def test_plan_ends_quietly_when_its_reader_goes_away(tmp_path: Path) -> None:
    """The reading end is closed before the tool writes anything: every write meets EPIPE, and no traceback."""
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "tools.reports.plan", "--stack", "prod", "--json", str(tmp_path / "plan.json")],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 0
    # It carried on after the pipe closed: the JSON is still written.
    assert (tmp_path / "plan.json").exists()


def test_plan_through_head_prints_no_error() -> None:
    shell = f"{sys.executable} -m tools.reports.plan --stack prod --json /dev/null | head -n 2"
    done = subprocess.run(  # noqa: S603 - a fixed pipeline
        ["bash", "-c", shell],  # noqa: S607
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(done.stdout.splitlines()) == 2
    assert done.stderr == ""


def test_plan_table_shows_priced_rows_only_the_stacks_own_first() -> None:
    settings = load_settings("prod")
    tenants = load_tenants(PROJECT_DIR / settings.tenants_file)
    rows = capacity_rows(settings, tenants, load_catalogue())
    table = plan.render_table(rows, settings.capacity.density_target).splitlines()
    body = [line for line in table[3:] if line.strip()]
    assert body[0].startswith(settings.cluster.orca_pool.vm_size) and body[0].endswith("<- this stack")
    priced = [r for r in rows if r.per_clinic_at_density_usd is not None]
    assert len(body) == len(priced)  # the stack's row is priced here, so it is one of them
    assert not any("n/a" in line for line in body)
    # Every column has a heading, and the grouped ones say what they count.
    headings = table[1].split()
    assert headings[:2] == ["node", "size"] and "binding" in headings and "now" in headings
    assert "clinics per node by" in table[0] and "$ per clinic-month" in table[0]


def test_the_stacks_own_row_is_shown_even_without_a_price() -> None:
    settings = load_settings("prod")
    tenants = load_tenants(PROJECT_DIR / settings.tenants_file)
    rows = capacity_rows(settings, tenants, load_catalogue())
    unpriced = next(r for r in rows if r.per_clinic_at_density_usd is None)
    rows = [replace(r, used_by_stack=r is unpriced) for r in rows]
    body = plan.render_table(rows, 20).splitlines()[3:]
    assert body[0].startswith(unpriced.vm_size) and "n/a" in body[0]
