"""What a package user gets: the licence, one version, the example config, pinned Docker dependencies, an sdist
that carries its tests. (.ci/run builds the wheel and sdist for real and runs them.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from watchfolder import __version__, cli
from watchfolder.config import show

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_licence_file_and_the_metadata_say_mit():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"  # an SPDX expression, not the deprecated table
    assert project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # SPDX replaces them


def test_the_version_is_written_once():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "watchfolder.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_python_classifiers_match_requires_python():
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.11"
    versions = [c.rsplit(" ", 1)[1] for c in project["classifiers"] if re.fullmatch(r".*:: 3\.\d+", c)]
    assert versions and min(versions, key=lambda v: int(v.split(".")[1])) == "3.11"


def test_config_example_prints_the_shipped_example_which_is_the_repositorys(capsys):
    assert cli.main(["config", "example"]) == 0
    printed = capsys.readouterr().out
    assert printed == (REPO / "config.example.yaml").read_text(encoding="utf-8")
    assert printed == show.example_text()
    assert yaml.safe_load(printed)["accounts"]
    assert "config/example.yaml" in PYPROJECT["tool"]["setuptools"]["package-data"]["watchfolder"]


def test_the_sdist_carries_what_its_tests_need():
    manifest = (REPO / "MANIFEST.in").read_text(encoding="utf-8").splitlines()
    assert "graft tests" in manifest  # conftest.py, harness.py and tests/emulator/ with them
    for needed in ("LICENSE", "config.example.yaml", "README.md"):
        assert any(line.startswith("include ") and needed in line.split() for line in manifest), needed
    for folder in ("docs", "systemd", "docker"):  # the doc tests read them
        assert f"graft {folder}" in manifest
    assert "include .ci/run" in manifest


def test_the_docker_image_installs_pinned_versions_of_every_runtime_dependency():
    lines = (REPO / "docker" / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = {re.split(r"==", line)[0].lower().replace("_", "-"): line.split("==")[1]
            for line in lines if line and not line.startswith("#")}
    wanted = {re.split(r"[<>=!~ \[]", dep)[0].lower() for dep in PYPROJECT["project"]["dependencies"]}
    assert wanted <= set(pins), wanted - set(pins)
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", version) for version in pins.values())
    dockerfile = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install -c constraints.txt ." in dockerfile
    assert "docker/refresh-constraints" in "\n".join(lines)


def test_emulator_help_points_at_nothing_the_wheel_lacks(capsys):
    from watchfolder.emulator import cli as emulator_cli

    text = emulator_cli.build_parser().format_help()
    assert "docs/" not in text


def test_the_readme_names_every_test_file_ci_runs_from_the_sdist():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    listed = re.search(r'sdist_tests="([^"]+)"', ci)
    assert listed, "the sdist step lists its tests in sdist_tests"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in listed[1].split():
        assert (REPO / path).is_file(), path
        assert f"`{path}`" in readme or f"`{Path(path).name}`" in readme, path
    assert "$sdist_tests" in ci
