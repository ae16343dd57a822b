"""The platform's labels and Azure annotations are spelled in orca_platform/conventions.py only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = ("orca-platform.io/", "service.beta.kubernetes.io/")
# Being changed concurrently by issue 12; the lead points them at conventions when merging.
PENDING = {
    "components/orca_tenant.py",
    "components/clinic_backup.py",
    "components/orca_pod.py",
    "orca_platform/backup_plan.py",
    "orca_platform/orca_image.py",
}
SKIP_DIRS = {"tests", "venv", "policy/venv", ".venv-scan", ".git", "node_modules"}


def _sources() -> list[Path]:
    out = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel == d or rel.startswith(d + "/") for d in SKIP_DIRS) or "/venv/" in f"/{rel}":
            continue
        out.append(path)
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def literal_names(source: str) -> list[str]:
    """String constants (docstrings aside) that spell a platform label or an Azure annotation."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docs
        and any(p in node.value for p in PREFIXES)
    ]


def test_detector_sees_a_literal_but_not_a_docstring() -> None:
    src = '"""orca-platform.io/clinic in a docstring"""\nX = {"orca-platform.io/clinic": 1}\n'
    assert literal_names(src) == ["orca-platform.io/clinic"]


def test_labels_and_annotations_are_spelled_in_conventions_only() -> None:
    offenders = {}
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel == "orca_platform/conventions.py" or rel in PENDING:
            continue
        found = literal_names(path.read_text())
        if found:
            offenders[rel] = found
    assert not offenders, f"import these from orca_platform.conventions instead: {offenders}"


def test_conventions_uses_the_standard_library_only() -> None:
    tree = ast.parse((ROOT / "orca_platform/conventions.py").read_text())
    imported = {
        (n.module or "") if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert imported <= {"__future__"}, imported
