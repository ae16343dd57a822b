"""Issue 28: the README is an operator's entry whose promises hold. Every field of the tenants models has a row in
its table (errors say "the README lists every field"); every relative link and #anchor of the README and docs/
resolves inside the repository; no page has two headings with one slug; a code comment's (README, "Section")
names a section that exists."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from pydantic import BaseModel

from orca_platform.model.tenants import Clinic, ClinicBackup, ClinicRestore, TenantsFile
from tests.orca_test_support import PROJECT_DIR

README = PROJECT_DIR / "README.md"
PAGES = [README, *sorted((PROJECT_DIR / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script, digits, '-' and '_'
    kept), each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return [m.group(2) for m in re.finditer(r"^(#{1,6}) +(.+?) *#*$", text, re.M)]


def section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_tenants_table_has_a_row_for_every_field_of_the_models() -> None:
    table = section(README.read_text(encoding="utf-8"), "## tenants.yaml")
    rows = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    wanted = {*aliases(Clinic), *(f"backup.{a}" for a in aliases(ClinicBackup))}
    wanted |= {f"restores[].{a}" for a in aliases(ClinicRestore)}
    assert wanted - rows == set(), "fields without a row in the README's tenants table"
    assert rows - wanted == set(), "rows for fields the models do not have"
    for top in aliases(TenantsFile):
        assert f"`{top}:" in table or f"`{top}`" in table, top


def test_the_test_sees_a_missing_row() -> None:
    """The check above can fail: a field the README lacks is found."""

    class Longer(Clinic):
        new_field: str | None = None

    table = section(README.read_text(encoding="utf-8"), "## tenants.yaml")
    rows = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    assert set(aliases(Longer)) - rows == {"newField"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves_inside_the_repository(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    root = PROJECT_DIR.resolve()
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # a public web page, not a file
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page.resolve()
        assert dest.is_relative_to(root), f"{page.name}: {target} points outside the repository"
        assert dest.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert dest.suffix == ".md", f"{page.name}: {target}: an anchor into a file that is not a page"
            assert anchor in {slug(h) for h in headings(dest)}, f"{page.name}: {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_mentions_files_outside_the_repository(page: Path) -> None:
    assert "../shared/" not in page.read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_two_headings_of_a_page_share_a_slug(page: Path) -> None:
    twice = [s for s, n in Counter(slug(h) for h in headings(page)).items() if n > 1]
    assert twice == [], f"{page.name}: headings with the same anchor: {twice}"


def test_slugs_are_githubs() -> None:
    assert slug("tenants.yaml") == "tenantsyaml"
    assert slug("The server's pod waits in `backup-gate`") == "the-servers-pod-waits-in-backup-gate"
    assert slug("The admission guard refused a delete (break-glass group)") == (
        "the-admission-guard-refused-a-delete-break-glass-group"
    )


def test_every_readme_section_named_in_code_and_docs_exists() -> None:
    """Comments and messages say (README, "Section"): that section is a heading of the README (its start suffices)."""
    names = headings(README)
    sources = [
        p
        for pattern in ("*.py", "orca_platform/**/*.py", "components/*.py", "tools/**/*.py", "docs/*.md", "*.yaml")
        for p in PROJECT_DIR.glob(pattern)
    ]
    missing = []
    for path in sources:
        for ref in re.findall(r"README, [\"']([^\"'\n]+)[\"']", path.read_text(encoding="utf-8")):
            if not any(h.startswith(ref) for h in names):
                missing.append(f"{path.relative_to(PROJECT_DIR)}: {ref}")
    assert missing == []
