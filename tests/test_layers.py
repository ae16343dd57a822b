"""Issue 13: the layering the README describes is checked, not remembered.

The contracts live in pyproject.toml ([tool.importlinter]); `make layers` (part of `make test`) runs them. These tests
show that they hold on the tree and that a forbidden import breaks them, and that the audit rules really import in the
policy pack's own virtualenv, which holds pulumi-policy and nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orca_platform.rules import RULES

PROJECT_DIR = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
POLICY_PYTHON = PROJECT_DIR / "policy" / "venv" / "bin" / "python"
PACKAGES = ("orca_platform", "components", "tools", "policy", "bench")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed arguments
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, check=False, timeout=120
    )


def copy_tree(dst: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(PROJECT_DIR / name, dst / name, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    shutil.copy(PROJECT_DIR / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_contracts_hold_on_the_tree() -> None:
    result = lint_imports(PROJECT_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


RULES_CONTRACT = "Audit rules use the standard library only"


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # pydantic arrives with naming -> tenants: the policy pack would crash at its first import.
        (
            "orca_platform/rules/exposure.py",
            "from orca_platform.plan import naming",
            "Audit rules use the standard library only",
        ),
        ("orca_platform/rules/values.py", "import yaml", "Audit rules use the standard library only"),
        ("orca_platform/plan/capacity.py", "import pulumi", "The core is pure"),
        ("orca_platform/plan/naming.py", "from components import k8s_objects", "The core is pure"),
        ("components/orca_pod.py", "import config", "Components never read config"),
        ("components/network.py", "from tools.offline import engine", "Components never read config"),
        ("components/cluster.py", "import yaml", "Components never read config"),
        ("policy/orca_policies.py", "from orca_platform.model import settings", "The policy pack reaches the core"),
        # Issue 20: the rooms' own contracts.
        ("orca_platform/model/tenants.py", "from orca_platform.plan import naming", "The model reads input"),
        ("orca_platform/backup/backup_plan.py", "from orca_platform.model import settings", "Backups depend on"),
        ("tools/offline/synth.py", "from tools.reports import svg", "The offline engine uses no other tool room"),
        ("tools/deploy/gate.py", "from tools.checks import isolation", "Deploy tools never import"),
        ("tools/audit/report.py", "from tools.deploy import diff", "Checks, audit and deploy stand apart"),
        ("tools/reports/plan.py", "from tools.audit import evidence", "Reports never import"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    root = copy_tree(tmp_path)
    path = root / module
    text = path.read_text(encoding="utf-8")
    # After the module docstring and `from __future__`, where an import would really go.
    head, sep, rest = text.partition("from __future__ import annotations\n")
    assert sep, f"{module} has no __future__ import to anchor the injected line"
    path.write_text(head + sep + line + "  # injected by the test\n" + rest, encoding="utf-8")
    result = lint_imports(root)
    assert result.returncode != 0, result.stdout
    broken = [ln for ln in result.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(ln.startswith(contract) for ln in broken), result.stdout


def _import_graph() -> dict[str, set[str]]:
    import grimp  # import-linter's own graph builder, pinned with it

    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan): each is an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    """Issue 20: what two modules share lives in the one below them; a package's __init__ re-exporting its modules
    (components/) is the one kind of edge left out, since the package imports its children by design."""
    edges = {m: {w for w in ws if not m.startswith(w + ".")} for m, ws in _import_graph().items()}
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(("folder", "most"), [("orca_platform", 15), ("tools", 15)])
def test_the_top_of_each_room_stays_small(folder: str, most: int) -> None:
    """Issue 20: a folder of 30 modules is a hall; the rest lives in packages by concern, each saying what it owns."""
    top = sorted(p.name for p in (PROJECT_DIR / folder).glob("*.py"))
    assert len(top) <= most, top
    for package in sorted(p for p in (PROJECT_DIR / folder).iterdir() if (p / "__init__.py").exists()):
        doc = (package / "__init__.py").read_text(encoding="utf-8")
        assert doc.startswith('"""') and "May import" in doc, f"{package} says neither what it owns nor may import"


def test_the_rules_import_in_the_policy_venv() -> None:
    """What `pulumi preview --policy-pack policy` really does: import the rules with pulumi-policy alone installed."""
    assert POLICY_PYTHON.exists(), "policy/venv is missing: `make unit` builds it (make policy-venv)"
    probe = "import orca_platform.rules as r, policy.orca_policies as p; print(len(r.rules_by_id()))"
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [str(POLICY_PYTHON), "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # Every domain module loaded there: the pack applies the rule set the audit applies.
    assert int(result.stdout.strip()) == len(RULES)
    # And pydantic really is absent there, so the probe above proves something.
    absent = subprocess.run(  # noqa: S603 - fixed arguments
        [str(POLICY_PYTHON), "-c", "import pydantic"], capture_output=True, text=True, check=False, timeout=60
    )
    assert absent.returncode != 0


def test_components_read_a_clinic_through_its_plan_only() -> None:
    """One rule for components: they read ClinicPlan's fields, never the raw tenants entry behind it (`.clinic`),
    so every derived value (FQDN, claim size, live volume, front door) is decided once, in the plan."""
    import ast

    offenders = []
    for path in [*sorted((PROJECT_DIR / "components").glob("*.py")), PROJECT_DIR / "__main__.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "clinic":
                offenders.append(f"{path.relative_to(PROJECT_DIR)}:{node.lineno}")
    assert offenders == [], f"components reach past the plan into the tenants entry: {offenders}"


MAX_LINES = 600
# A module may be longer only if its docstring says why, in these words.
LONG_REASON = "longer than 600 lines because"


def oversized(root: Path) -> dict[str, int]:
    """Modules of the program, the tools and the policy pack over MAX_LINES whose docstring gives no reason."""
    import ast

    found = {}
    for folder in ("orca_platform", "components", "tools", "policy", "bench"):
        for path in sorted((root / folder).rglob("*.py")):
            if "venv" in path.relative_to(root).parts:
                continue
            text = path.read_text(encoding="utf-8")
            lines = len(text.splitlines())
            reason = LONG_REASON in (ast.get_docstring(ast.parse(text)) or "").lower()
            if lines > MAX_LINES and not reason:
                found[path.relative_to(root).as_posix()] = lines
    return found


def test_no_module_outgrows_one_concern() -> None:
    """Issue 13: a file past ~600 lines is usually two concerns; one that is not says so in its docstring."""
    assert oversized(PROJECT_DIR) == {}


def test_an_oversized_module_is_found(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    body = "\n".join(f"X{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "tools" / "big.py").write_text('"""One concern."""\n' + body, encoding="utf-8")
    (tmp_path / "tools" / "long.py").write_text(f'"""Kept whole: {LONG_REASON} it is one table."""\n' + body)
    assert oversized(tmp_path) == {"tools/big.py": MAX_LINES + 1}
