"""The chapter defines, the package keeps: compare (or copy) the definitions a chapter shows with
the package's.

A code cell whose first line is ``# Saved in vae_lesson.<module>: ...`` defines functions and
classes that the package keeps in ``vae_lesson.<module>``, so that later chapters can import them.
Each such definition must be the same code in both places (the same abstract syntax tree: comments
and blank lines may differ), and each package definition whose docstring says "Defined in chapter
NN" must be shown by a saved cell of chapter NN.

    python tools/chapter_code.py           # list the differences (exit status 1 if there are any)
    python tools/chapter_code.py --write   # copy each chapter's definitions into the package
    python tools/chapter_code.py --write 05   # only chapter 05's

``tests/book/test_chapter_code.py`` runs the comparison.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^# Saved in (vae_lesson(?:\.\w+)+)\b")
DEFINED_IN = re.compile(r"Defined in chapter (\d\d)\b")
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class Saved:
    """One definition a chapter shows in a saved cell."""

    notebook: Path
    cell: int
    module: str
    name: str
    node: ast.AST
    source: str  # the definition's text, decorators included


def _cell_source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _segment(text: str, node: ast.AST) -> str:
    lines = text.splitlines()
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return textwrap.dedent("\n".join(lines[first - 1 : node.end_lineno]))


def saved_definitions(notebook: Path) -> list[Saved]:
    """Every top-level function and class of the notebook's saved cells, in order."""
    found = []
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "code":
            continue
        text = _cell_source(cell)
        match = MARKER.match(text)
        if not match:
            continue
        tree = ast.parse(text)
        for node in tree.body:
            if isinstance(node, DEFINITIONS):
                found.append(
                    Saved(notebook, index, match[1], node.name, node, _segment(text, node))
                )
    return found


def module_path(module: str, root: Path = ROOT) -> Path:
    """The file of ``module`` in the checkout at ``root``."""
    path = root.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise ValueError(f"no module {module} in {root}")


def module_definitions(path: Path) -> dict:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, DEFINITIONS)}


def _dump(node: ast.AST) -> str:
    return ast.dump(node, include_attributes=False)


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def problems(root: Path = ROOT) -> list[str]:
    """What differs between the chapters' saved definitions and the package's, as sentences."""
    found = []
    shown = set()
    for notebook in notebooks(root):
        for saved in saved_definitions(notebook):
            where = f"{notebook.name} cell {saved.cell}"
            try:
                path = module_path(saved.module, root)
            except ValueError:
                found.append(f"{where}: {saved.module} is not a module of the package")
                continue
            ours = module_definitions(path).get(saved.name)
            shown.add((saved.module, saved.name))
            if ours is None:
                found.append(f"{where} defines {saved.name}, which {saved.module} lacks")
            elif _dump(ours) != _dump(saved.node):
                found.append(
                    f"{where}: {saved.name} differs from {saved.module}.{saved.name} "
                    "(python tools/chapter_code.py --write copies the chapter's version)"
                )
            else:
                chapter = notebook.name[:2]
                doc = ast.get_docstring(ours) or ""
                match = DEFINED_IN.search(doc)
                if match is None or match[1] != chapter:
                    found.append(
                        f"{saved.module}.{saved.name}: its docstring should say "
                        f"'Defined in chapter {chapter}' ({notebook.name})"
                    )
    # the other way round: what the package says a chapter defines, the chapter shows
    for path in sorted((root / "vae_lesson").rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for name, node in module_definitions(path).items():
            match = DEFINED_IN.search(ast.get_docstring(node) or "")
            if match and (module, name) not in shown:
                found.append(
                    f"{module}.{name} says it is defined in chapter {match[1]}, but no saved cell "
                    "of that chapter shows it"
                )
    return found


def write(root: Path = ROOT, chapters=None) -> list[str]:
    """Copy every saved definition into its module (replacing the package's, or appending it).

    ``chapters``: only these notebooks (names starting with these numbers, e.g. ``["05"]``).
    """
    changed = []
    for notebook in notebooks(root):
        if chapters and notebook.name[:2] not in chapters:
            continue
        for saved in saved_definitions(notebook):
            path = module_path(saved.module, root)
            text = path.read_text(encoding="utf-8")
            ours = module_definitions(path).get(saved.name)
            if ours is not None and _dump(ours) == _dump(saved.node):
                continue
            lines = text.splitlines()
            if ours is None:
                lines += ["", "", *saved.source.splitlines()]
            else:
                first = min([ours.lineno] + [d.lineno for d in ours.decorator_list])
                lines[first - 1 : ours.end_lineno] = saved.source.splitlines()
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            changed.append(f"{saved.module}.{saved.name} <- {notebook.name} cell {saved.cell}")
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", action="store_true", help="copy the chapters' definitions into the package"
    )
    parser.add_argument("chapters", nargs="*", help="with --write: only these chapters, e.g. 05")
    args = parser.parse_args(argv)
    if args.write:
        for line in write(chapters=args.chapters):
            print(line)
    found = problems()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
