"""The architecture holds: the import contracts in pyproject.toml (every room of sync_worker on its floor, arrows
only downwards, the sandbox imported only by the rehearsal commands, each I/O library through the rooms named for it,
the core free of I/O, no cycles) are checked by import-linter on every run, over every package that ships."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_imports_keep_every_contract_in_pyproject() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_package_that_ships_is_under_the_contracts_and_the_type_checker() -> None:
    """A new top-level package is seen by import-linter and mypy, or the wheel would carry code no contract binds."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    on_disk = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert shipped == on_disk
    assert set(project["tool"]["importlinter"]["root_packages"]) == shipped
    assert set(project["tool"]["mypy"]["packages"]) == shipped
