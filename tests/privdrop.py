"""Running watchfolder as another user from any checkout, for the tests that drop privileges.

A checkout may sit where other users cannot read it (a clone under /root, or in a ``mktemp -d``
folder, mode 700), and so may its virtualenv. ``portable_python`` copies what the program needs (the
package, and the third-party packages this test process has loaded from outside the standard library)
into a world-readable folder, and runs the base interpreter on it; only when the other user cannot
run that interpreter at all does the test skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

def interpreters() -> list[str]:
    """Pythons of this version to try, the virtualenv's own base first (it may live under /root, out of
    another user's reach, where a system python of the same version is not)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = [os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable),
             f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    return [path for index, path in enumerate(found) if os.path.exists(path) and path not in found[:index]]


_LIST_ROOTS = """
import importlib, pkgutil, sys, sysconfig
from pathlib import Path
import watchfolder
for found in pkgutil.walk_packages(watchfolder.__path__, "watchfolder."):
    if not found.name.endswith("__main__"):
        importlib.import_module(found.name)
stdlib = {Path(sysconfig.get_path("stdlib")).resolve()}
for module in list(sys.modules.values()):
    location = getattr(module, "__file__", None)
    if not location:
        continue
    path = Path(location).resolve()
    if "site-packages" not in path.parts or any(base in path.parents for base in stdlib):
        continue
    while path.parent.name != "site-packages":
        path = path.parent
    print(path)
"""


def _third_party_roots() -> set[Path]:
    """The top-level files and folders, outside the standard library, of what watchfolder's modules import
    (asked of a fresh interpreter of this virtualenv, so pytest's own plugins are not among them)."""
    found = subprocess.run([sys.executable, "-c", _LIST_ROOTS], capture_output=True, text=True, timeout=60,
                           check=True, cwd=REPO)
    return {Path(line) for line in found.stdout.splitlines() if line and "watchfolder" not in Path(line).name}


def _open_up(folder: Path) -> None:
    for current, _dirs, files in os.walk(folder):
        os.chmod(current, 0o755)  # noqa: S103 - the other user must read the program
        for name in files:
            os.chmod(Path(current) / name, stat.S_IMODE(os.stat(Path(current) / name).st_mode) | 0o444)


def portable_python(base: Path, uid: int, gid: int) -> tuple[list[str], dict[str, str]]:
    """Copy watchfolder and what it imports under ``base`` (world-readable); return (argv prefix, env additions)
    that run Python with it as ``uid``. Skip the test, with the reason, when that user cannot run Python."""
    site = base / "site"
    site.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "watchfolder", site / "watchfolder", ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True)
    for root in _third_party_roots():
        if root.is_dir():
            shutil.copytree(root, site / root.name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(root, site / root.name)
    os.chmod(base, 0o755)  # noqa: S103
    _open_up(site)
    env = {"PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
    said = []
    for interpreter in interpreters():
        probe = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", interpreter, "-s",
                                "-c", "import watchfolder.cli, watchfolder.commands.check"], capture_output=True,
                               text=True, timeout=60, check=False, cwd=base, env={**os.environ, **env})
        if probe.returncode == 0:
            return [interpreter, "-s"], env
        said.append(f"{interpreter}: {(probe.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    pytest.skip(f"uid {uid} cannot run Python {sys.version_info.major}.{sys.version_info.minor} with watchfolder "
                f"here ({'; '.join(said) or 'no interpreter found'})")
