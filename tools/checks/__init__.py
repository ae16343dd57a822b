"""Checks over what the program renders: schemas (kube_schema), the security scan (scan), the isolation proof
(isolation, netpol/, admission), shellcheck of the embedded scripts (shell_scripts); `python -m tools.checks` (run).

May import: the core, tools.offline and tools.cli. Never tools.deploy, tools.audit or tools.reports.
"""
