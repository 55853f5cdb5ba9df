"""The package's layering: the CLI parses, the jobs work, the core knows nothing of either job."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import vid2vid_app

PACKAGE = Path(vid2vid_app.__file__).resolve().parent
ROOT = PACKAGE.parent


def test_import_layers_contract_is_kept():
    """import-linter's layer contract in pyproject.toml (imports inside functions included):
    cli -> dance | translate -> runs | metrics | media -> training -> pose | video | models -> helpers."""
    tool = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([tool, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_no_grab_bag_packages_remain():
    """Job code lives in dance/ or translate/, not in data/ or inference/ packages."""
    assert not (PACKAGE / "data").exists() and not (PACKAGE / "inference").exists()


def test_library_modules_do_not_import_click():
    """Library code never imports click: the CLI parses options, the library does the work."""
    library = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts]
    assert len(library) > 30
    offenders = [str(p.relative_to(PACKAGE)) for p in library
                 if re.search(r"^\s*(import|from) click\b", p.read_text(), re.M)]
    assert offenders == []


def test_no_library_function_is_longer_than_80_lines():
    """Long jobs read as numbered steps calling named functions, not as one long body."""
    import ast

    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
