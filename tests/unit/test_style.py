"""The package's code style: ruff, configured in pyproject.toml (lines of at most 100 characters)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ruff() -> list[str]:
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed (it is in requirements.txt): pip install ruff")


def test_the_package_passes_ruff():
    result = subprocess.run([*_ruff(), "check", "--no-cache", "vae_lesson", "tools/chapter_code.py",
                             "tools/reference_numbers.py", "tools/make_prose_figures.py"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_ruff_finds_a_long_line(tmp_path):
    # the configuration is the one the check above reads, and it does flag a line over 100 characters
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "long.py").write_text("x = " + "1 + " * 30 + "1\n")
    result = subprocess.run([*_ruff(), "check", "--no-cache", "long.py"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 1 and "E501" in result.stdout
