"""`make rule-table`: docs/audit.md's tables of rules, written from the registry (orca_platform.rules).

One table per domain, in the registry's order, each row the rule's id, what it checks, why, its enforcement and
whether the policy pack applies it at preview. `--check` fails when the document is stale (tests/test_rules.py
runs it), so the table an auditor reads is the rule set that runs.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from orca_platform.rules import DOMAINS, RULES, Rule
from tools.reports import generated_blocks

PROJECT_DIR = Path(__file__).resolve().parents[2]
AUDIT_DOC = PROJECT_DIR / "docs" / "audit.md"
TARGET = "rule-table"
BLOCK = "rules"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def row(rule: Rule) -> str:
    rid = f"`{rule.id}`" + (" (stack)" if rule.scope == "stack" else "")
    preview = "yes" if rule.at_preview else "audit only"
    cells = [rid, _cell(rule.what), _cell(rule.why), rule.enforcement.value, preview]
    return "| " + " | ".join(cells) + " |"


def table() -> str:
    levels = Counter(r.enforcement.value for r in RULES)
    audit_only = sum(not r.at_preview for r in RULES)
    lines = [
        f"{len(RULES)} rules in {len(DOMAINS)} domains: {levels['mandatory']} mandatory, {levels['advisory']} "
        f"advisory; {len(RULES) - audit_only} applied at preview, {audit_only} in the audit only.",
    ]
    for domain in DOMAINS:
        lines += ["", f"### {domain.title}", "", domain.intro, ""]
        lines += ["| id | what | why | enforcement | preview |", "| --- | --- | --- | --- | --- |"]
        lines += [row(r) for r in domain.rules]
    return "\n".join(lines)


def generated() -> dict[Path, list[tuple[str, str]]]:
    return {AUDIT_DOC: [(BLOCK, table())]}


def main(argv: list[str] | None = None) -> int:
    return generated_blocks.main(TARGET, __doc__, generated, argv)


if __name__ == "__main__":
    sys.exit(main())
