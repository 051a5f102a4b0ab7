"""Where the book lives comes from one setting (_config.yml's repository.url and branch): every Colab
link and install line of the notebooks, the student notebooks and the README names that repository, the
package's address of the published book (BOOK_URL, where the trained weights are downloaded from) is that
repository's GitHub Pages site, and tools/book_links.py moves them all to a fork in one run."""

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
    from vae_lesson.infra import published

    owner, name = repo.slug.split("/")
    assert published.BOOK_URL == repo.book_url == f"https://{owner.lower()}.github.io/{name}/"


@pytest.mark.parametrize("slug, url", [("Someone/vae-fork", "https://someone.github.io/vae-fork/"),
                                       ("someone/someone.github.io", "https://someone.github.io/")])
def test_the_book_is_published_on_the_repositorys_github_pages(slug, url):
    assert book_links.Repository(slug, "main").book_url == url


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
    (tmp_path / book_links.PUBLISHED).parent.mkdir(parents=True)
    shutil.copy(ROOT / book_links.PUBLISHED, tmp_path / book_links.PUBLISHED)
    (tmp_path / book_links.WORKFLOW).parent.mkdir(parents=True)
    shutil.copy(ROOT / book_links.WORKFLOW, tmp_path / book_links.WORKFLOW)
    return current


def test_one_edit_and_one_run_move_every_link_to_a_fork(tmp_path):
    old = _copy(tmp_path, "https://github.com/Someone/vae-fork", branch="teaching")
    found = book_links.problems(tmp_path)
    others = (book_links.PUBLISHED, book_links.WORKFLOW)
    links = [line for line in found if not line.startswith(others)]
    assert links and all("Someone/vae-fork@teaching" in line for line in links)
    # the workflow that publishes the book builds the configured branch
    assert [line.split(": ", 1)[1] for line in found if line.startswith(book_links.WORKFLOW)] == [
        f"publishes the branch {old.branch}, but _config.yml says teaching"]
    assert any(line.startswith("notebooks/05_vae.ipynb:") for line in found)
    # the package's address of the published book, where the trained weights come from
    assert [line for line in found if line.startswith(book_links.PUBLISHED)] == [
        f"{book_links.PUBLISHED}:{_book_url_line(ROOT)}: BOOK_URL is {old.book_url}, but _config.yml's "
        "repository is published at https://someone.github.io/vae-fork/"]
    assert book_links.main(["--root", str(tmp_path)]) == 0
    assert book_links.problems(tmp_path) == []
    fork = book_links.repository(tmp_path)
    for path in (tmp_path / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)  # still a valid notebook
        assert fork.colab(f"notebooks/{path.name}") in nb.cells[0].source
        assert fork.pip_source in nb.cells[1].source
        assert old.slug not in path.read_text()
    assert fork.pip_source in (tmp_path / "README.md").read_text()
    published = (tmp_path / book_links.PUBLISHED).read_text()
    assert 'BOOK_URL = "https://someone.github.io/vae-fork/"\n' in published
    # only that line changed
    assert published.replace(fork.book_url, old.book_url) == (ROOT / book_links.PUBLISHED).read_text()
    assert _workflow(tmp_path)["on"]["push"]["branches"] == ["teaching"]
    assert book_links.main(["--check", "--root", str(tmp_path)]) == 0


def _workflow(root):
    import yaml

    workflow = yaml.safe_load((root / book_links.WORKFLOW).read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return workflow


def test_the_workflow_builds_the_book_and_publishes_it_with_its_weights():
    workflow = _workflow(ROOT)
    assert workflow["on"]["push"]["branches"] == [book_links.repository(ROOT).branch]
    assert "workflow_dispatch" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build = workflow["jobs"]["build"]["steps"]
    runs = "\n".join(step.get("run", "") for step in build)
    # the CPU build of PyTorch before make, which would otherwise fetch a CUDA build
    assert runs.index("download.pytorch.org/whl/cpu") < runs.index("make book")
    uses = {step.get("uses", "").split("@")[0]: step for step in build}
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert uses["actions/cache"]["with"]["path"] == "~/.cache/vae_lesson"
    # make book is what publishes the weights next to the HTML
    assert "tools/publish_weights.py" in (ROOT / "Makefile").read_text().split("\nbook:")[1].split("\n\n")[0]
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]


def _book_url_line(root):
    text = (root / book_links.PUBLISHED).read_text()
    return text[: book_links.BOOK_URL_LINE.search(text).start()].count("\n") + 1


def test_a_package_without_the_book_address_is_reported(tmp_path):
    _copy(tmp_path, f"https://github.com/{book_links.repository(ROOT).slug}")
    path = tmp_path / book_links.PUBLISHED
    path.write_text(path.read_text().replace("BOOK_URL = ", "BOOK_ADDRESS = "))
    found = book_links.problems(tmp_path)
    assert len(found) == 1 and found[0].startswith(f"{book_links.PUBLISHED}: no line BOOK_URL")


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
