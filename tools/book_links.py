"""Where the book lives, from one setting: ``repository.url`` and ``repository.branch`` of
_config.yml.

Every link that names the repository (the "Open this chapter in Colab" line of each notebook, the
install cell's ``pip install git+https://github.com/...``, the README's install lines, the student
notebooks' links) is written from that setting, and so is the address of the published book
(``BOOK_URL`` in vae_lesson/infra/published.py, the repository's GitHub Pages site, where the
trained weights are downloaded from). To point the book at a fork, edit the two lines of
_config.yml and run

    python tools/book_links.py          # rewrite the links in notebooks/, README.md, BOOK_URL
                                        # and the workflow's branch
    python tools/make_student_notebooks.py   # the student versions (they read the same setting)
    python tools/book_links.py --check  # list every link that names another repository (exit 1)

``tests/book/test_book_links.py`` runs the check.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A GitHub repository named in a Colab link or a pip install line, with its branch.
COLAB_LINK = re.compile(
    r"https://colab\.research\.google\.com/github/"
    r"(?P<repo>[\w.-]+/[\w.-]+)/blob/(?P<branch>[\w./-]+?)/(?P<path>(?:notebooks|student)/)"
)
PIP_SOURCE = re.compile(r"git\+https://github\.com/(?P<repo>[\w.-]+/[\w.-]+?)@(?P<branch>[\w./-]+)")
# Every file that may hold such links, relative to the root (student/ is written by
# make_student_notebooks.py from the same setting, and checked here).
PLACES = ("README.md", "notebooks/*.ipynb", "student/*.ipynb", "student/README.md")
# The package's copy of the published book's address, which it needs at run time (e.g. in Colab).
PUBLISHED = "vae_lesson/infra/published.py"
BOOK_URL_LINE = re.compile(r'^BOOK_URL = "(?P<url>[^"]*)"$', flags=re.M)
# The workflow that builds and publishes the book runs on pushes to the book's branch.
WORKFLOW = ".github/workflows/book.yml"
WORKFLOW_BRANCH = re.compile(r"^(?P<indent>\s*)branches: \[(?P<branch>[^\]]*)\]$", flags=re.M)


@dataclass(frozen=True)
class Repository:
    """``owner/name`` on GitHub and the branch the book is built from."""

    slug: str
    branch: str

    def colab(self, path: str) -> str:
        """The Colab link of a notebook at ``path`` (e.g. ``notebooks/05_vae.ipynb``)."""
        return f"https://colab.research.google.com/github/{self.slug}/blob/{self.branch}/{path}"

    @property
    def pip_source(self) -> str:
        return f"git+https://github.com/{self.slug}@{self.branch}"

    @property
    def book_url(self) -> str:
        """Where the built book is published: the repository's GitHub Pages site."""
        owner, name = self.slug.split("/")
        site = f"https://{owner.lower()}.github.io/"
        return site if name.lower() == f"{owner.lower()}.github.io" else f"{site}{name}/"


def repository(root: Path = ROOT) -> Repository:
    """The repository of _config.yml; a clear error if it is missing or not on GitHub."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    settings = config.get("repository") or {}
    url = str(settings.get("url", ""))
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", url)
    if match is None:
        raise ValueError(
            "_config.yml: repository.url must be a GitHub repository such as "
            f"https://github.com/owner/name, got {url!r}"
        )
    branch = str(settings.get("branch") or "main")
    return Repository(match.group(1), branch)


def _files(root: Path) -> list[Path]:
    return sorted({p for pattern in PLACES for p in root.glob(pattern) if p.is_file()})


def rewrite(text: str, repo: Repository) -> str:
    """``text`` with every Colab link and pip source pointing at ``repo``."""
    text = COLAB_LINK.sub(
        lambda m: (
            f"https://colab.research.google.com/github/{repo.slug}/blob/{repo.branch}/"
            f"{m.group('path')}"
        ),
        text,
    )
    return PIP_SOURCE.sub(lambda m: repo.pip_source, text)


def problems(root: Path = ROOT) -> list[str]:
    """Every link in the book's files that names another repository or branch than _config.yml's."""
    repo = repository(root)
    found = []
    for path in _files(root):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for pattern in (COLAB_LINK, PIP_SOURCE):
                for m in pattern.finditer(line):
                    if (m.group("repo"), m.group("branch")) != (repo.slug, repo.branch):
                        found.append(
                            f"{path.relative_to(root)}:{number}: names "
                            f"{m.group('repo')}@{m.group('branch')}, but _config.yml says "
                            f"{repo.slug}@{repo.branch}"
                        )
    published = root / PUBLISHED
    match = (
        BOOK_URL_LINE.search(published.read_text(encoding="utf-8")) if published.is_file() else None
    )
    if match is None:
        found.append(f'{PUBLISHED}: no line BOOK_URL = "..." (the published book\'s address)')
    elif match.group("url") != repo.book_url:
        number = published.read_text(encoding="utf-8")[: match.start()].count("\n") + 1
        found.append(
            f"{PUBLISHED}:{number}: BOOK_URL is {match.group('url')}, but _config.yml's "
            f"repository is published at {repo.book_url}"
        )
    workflow = root / WORKFLOW
    if workflow.is_file():
        text = workflow.read_text(encoding="utf-8")
        match = WORKFLOW_BRANCH.search(text)
        if match is None:
            found.append(f"{WORKFLOW}: no line 'branches: [...]' (the branch it publishes)")
        elif match.group("branch").strip() != repo.branch:
            number = text[: match.start()].count("\n") + 1
            found.append(
                f"{WORKFLOW}:{number}: publishes the branch {match.group('branch').strip()}, but "
                f"_config.yml says {repo.branch}"
            )
    return found


def _replace_file(path: Path, new: str) -> None:
    tmp = path.with_name(path.name + ".tmp")  # a whole file or the old one
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite the links of notebooks/ and README.md (not student/) and ``BOOK_URL``; returns the
    changed files."""
    repo = repository(root)
    changed = []
    published = root / PUBLISHED
    if published.is_file():
        text = published.read_text(encoding="utf-8")
        new = BOOK_URL_LINE.sub(f'BOOK_URL = "{repo.book_url}"', text)
        if new != text:
            _replace_file(published, new)
            changed.append(published)
    workflow = root / WORKFLOW
    if workflow.is_file():
        text = workflow.read_text(encoding="utf-8")
        new = WORKFLOW_BRANCH.sub(lambda m: f"{m.group('indent')}branches: [{repo.branch}]", text)
        if new != text:
            _replace_file(workflow, new)
            changed.append(workflow)
    for path in _files(root):
        if path.parts[-2] == "student":
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, repo)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list links that disagree")
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's root folder")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(args.root)
        print("\n".join(found) if found else "every link names the repository of _config.yml")
        return 1 if found else 0
    for path in write(args.root):
        print(f"rewrote {path.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
