"""docs/architecture.md names only modules and folders that exist, and names every role folder."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_layers import LAYERS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
# `daemon/loop.py`, `ops/doctor/`, `cli.py`, `tests/test_layers.py`, `tiktok/codes.py`, ...
PATH = re.compile(r"`((?:[a-z_]+/)*[a-z_]+(?:\.py|/))`")
ACCOUNT_FOLDERS = {"inbox/", "processing/", "done/", "failed/"}   # the user's folders, not the code's


def named_paths() -> list[str]:
    return sorted(set(PATH.findall(DOC.read_text(encoding="utf-8"))) - ACCOUNT_FOLDERS)


def exists(name: str) -> bool:
    """A path the document names: inside the package (how it writes them), else from the repository root."""
    return any((base / name).exists() for base in (ROOT / "watchfolder", ROOT))


def test_every_module_and_folder_the_architecture_names_exists() -> None:
    names = named_paths()
    assert len(names) > 30   # the document does name the modules
    missing = [name for name in names if not exists(name)]
    assert missing == [], f"docs/architecture.md names what is not there: {missing}"


def test_the_check_sees_a_name_that_is_gone() -> None:
    assert not exists("daemon/service.py") and exists("daemon/loop.py") and exists("ops/")


def test_every_role_folder_is_described() -> None:
    names = set(named_paths())
    folders = {unit for unit in LAYERS if (ROOT / "watchfolder" / unit).is_dir()}
    undescribed = sorted(unit for unit in folders if f"{unit}/" not in names)
    assert undescribed == []
