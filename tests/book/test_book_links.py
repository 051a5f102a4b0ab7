"""Where the book lives comes from one setting (_config.yml's repository.url and branch): every Colab
link and install line of the notebooks, the student notebooks and the README names that repository, and
tools/book_links.py moves them all to a fork in one run."""

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import book_links  # noqa: E402


def test_every_link_names_the_configured_repository():
    assert book_links.problems(ROOT) == []
    repo = book_links.repository(ROOT)
    readme = (ROOT / "README.md").read_text()
    assert repo.pip_source in readme  # the install line a reader copies


def _copy(tmp_path, url, branch="main"):
    """The config, the README and two notebooks, with another repository.url and branch."""
    config = (ROOT / "_config.yml").read_text()
    current = book_links.repository(ROOT)
    config = config.replace(f"url: https://github.com/{current.slug}", f"url: {url}")
    config = config.replace(f"branch: {current.branch}", f"branch: {branch}")
    (tmp_path / "_config.yml").write_text(config)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "notebooks").mkdir()
    for name in ("01_autoencoder.ipynb", "05_vae.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, tmp_path / "notebooks" / name)
    return current


def test_one_edit_and_one_run_move_every_link_to_a_fork(tmp_path):
    old = _copy(tmp_path, "https://github.com/someone/vae-fork", branch="teaching")
    found = book_links.problems(tmp_path)
    assert found and all("someone/vae-fork@teaching" in line for line in found)
    assert any(line.startswith("notebooks/05_vae.ipynb:") for line in found)
    assert book_links.main(["--root", str(tmp_path)]) == 0
    assert book_links.problems(tmp_path) == []
    fork = book_links.repository(tmp_path)
    for path in (tmp_path / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)  # still a valid notebook
        assert fork.colab(f"notebooks/{path.name}") in nb.cells[0].source
        assert fork.pip_source in nb.cells[1].source
        assert old.slug not in path.read_text()
    assert fork.pip_source in (tmp_path / "README.md").read_text()
    assert book_links.main(["--check", "--root", str(tmp_path)]) == 0


def test_a_notebook_that_names_another_repository_is_reported(tmp_path):
    _copy(tmp_path, f"https://github.com/{book_links.repository(ROOT).slug}")
    path = tmp_path / "notebooks" / "01_autoencoder.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"].append("\n[elsewhere](https://colab.research.google.com/github/other/copy/blob/main/"
                                    "notebooks/01_autoencoder.ipynb)\n")
    path.write_text(json.dumps(nb, indent=1))
    found = book_links.problems(tmp_path)
    assert len(found) == 1 and found[0].startswith("notebooks/01_autoencoder.ipynb:") and "other/copy@main" in found[0]
    assert book_links.main(["--check", "--root", str(tmp_path)]) == 1


def test_a_setting_that_is_not_a_github_repository_is_refused(tmp_path):
    _copy(tmp_path, "https://gitlab.com/someone/fork")
    with pytest.raises(ValueError, match="repository.url must be a GitHub repository"):
        book_links.repository(tmp_path)
