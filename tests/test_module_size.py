"""Small modules: one over 300 lines must say why in its docstring ("Over 300 lines …")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "watchfolder"
LIMIT = 300


def long_modules_without_a_reason(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= LIMIT:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if "Over 300 lines" not in docstring:
            found.append(f"{path.relative_to(package.parent)} ({text.count(chr(10))} lines)")
    return found


def test_every_module_over_300_lines_says_why() -> None:
    assert long_modules_without_a_reason(PACKAGE) == []


def test_the_size_check_finds_a_long_module_without_a_reason(tmp_path: Path) -> None:
    (tmp_path / "long.py").write_text('"""A module."""\n' + "x = 1\n" * 400)
    (tmp_path / "explained.py").write_text('"""A module.\n\nOver 300 lines because it must."""\n' + "x = 1\n" * 400)
    (tmp_path / "short.py").write_text("x = 1\n")
    assert long_modules_without_a_reason(tmp_path) == [f"{tmp_path.name}/long.py (401 lines)"]
