"""The platform's labels, Azure annotations and ports are spelled in orca_platform/conventions.py only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = (
    "orca-platform.io/",
    "service.beta.kubernetes.io/",
    "app.kubernetes.io/",
    "pod-security.kubernetes.io/",
    "kubernetes.io/metadata.name",
    "nginx.org/policies",
)
CONVENTIONS = "orca_platform/conventions.py"
SKIP_DIRS = {
    "tests",
    "venv",
    "policy/venv",
    ".venv-scan",
    ".venv-barman",
    ".git",
    "node_modules",
    "tools/npm/node_modules",
}


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
        if rel == CONVENTIONS:
            continue
        found = literal_names(path.read_text())
        if found:
            offenders[rel] = found
    assert not offenders, f"import these from orca_platform.conventions instead: {offenders}"


def test_conventions_uses_the_standard_library_only() -> None:
    tree = ast.parse((ROOT / CONVENTIONS).read_text())
    imported = {
        (n.module or "") if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    # `re` for the snapshot names (SNAPSHOT_NAME): still nothing the policy pack's venv lacks.
    assert imported <= {"__future__", "re"}, imported


def _conventions() -> tuple[set[str], set[int]]:
    """The names conventions.py defines at module level, and the values of its ports."""
    names: set[str] = set()
    ports: set[int] = set()
    for node in ast.parse((ROOT / CONVENTIONS).read_text()).body:
        for target, value in _assignments(node):
            names.add(target)
            if target.endswith("_PORT") and isinstance(value, ast.Constant) and isinstance(value.value, int):
                ports.add(value.value)
    return names, ports


def _assignments(node: ast.AST) -> list[tuple[str, ast.expr | None]]:
    """(name, value) of each plain name an assignment statement binds."""
    if isinstance(node, ast.Assign):
        return [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [(node.target.id, node.value)]
    return []


def redefinitions(source: str, names: set[str], ports: set[int]) -> list[str]:
    """Assignments anywhere to a name conventions defines, and module-level constants holding one of its ports."""
    tree = ast.parse(source)
    found = [name for node in ast.walk(tree) for name, _ in _assignments(node) if name in names]
    for node in tree.body:
        for name, value in _assignments(node):
            # bool is an int: True would read as port 1.
            if isinstance(value, ast.Constant) and type(value.value) is int and value.value in ports:
                found.append(f"{name} = {value.value}")
    return found


def test_detector_sees_a_copied_name_and_a_copied_port() -> None:
    src = "GLSERVER_PORT = 1\nDB: int = 5432\n\ndef f() -> None:\n    CLINIC_LABEL = 'x'\n    db = 5432\n"
    assert redefinitions(src, {"GLSERVER_PORT", "CLINIC_LABEL"}, {5432}) == [
        "GLSERVER_PORT",
        "CLINIC_LABEL",
        "DB = 5432",
    ]


def test_names_and_ports_are_defined_in_conventions_only() -> None:
    names, ports = _conventions()
    assert {"GLSERVER_PORT", "PUSH_PORT", "POSTGRES_PORT", "CLINIC_LABEL"} <= names
    assert {8000, 9400, 5432} <= ports
    offenders = {}
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel == CONVENTIONS:
            continue
        found = redefinitions(path.read_text(), names, ports)
        if found:
            offenders[rel] = found
    assert not offenders, f"import these from orca_platform.conventions instead of defining them again: {offenders}"
