"""Audits of stack exports: reading the export (export), the rules' findings (evidence), the report (report,
markdown), archiving evidence (archive) and docs/audit.md's rule tables (rule_table); `python -m tools.audit`.

May import: the core (orca_platform.rules above all), tools.offline, tools.reports.generated_blocks and tools.cli.
Never tools.deploy or tools.checks.
"""
