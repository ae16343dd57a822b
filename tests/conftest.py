"""Shared fixtures. Keep fixture names specific: several engineers add tests (and fixtures) here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from tools.offline.engine import Run, run_program  # noqa: E402 - needs the project on sys.path first

# --- whole-program runs under mocks (issues 2, 3, 4): one per stack and session; ~2 s each ------------------------


@pytest.fixture(scope="session")
def dev_run() -> Run:
    """The real __main__.py for the dev stack with its own tenants file, run offline with preview=False."""
    return run_program("dev")


@pytest.fixture(scope="session")
def prod_run() -> Run:
    """The real __main__.py for the prod stack with its own tenants file, run offline with preview=False."""
    return run_program("prod")


@pytest.fixture(scope="session", params=["dev", "prod"])
def stack_run(request: pytest.FixtureRequest) -> Run:
    """Each sample stack in turn (reuses dev_run / prod_run)."""
    run: Run = request.getfixturevalue(f"{request.param}_run")
    return run
