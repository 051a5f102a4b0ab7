"""The chapter defines, the package keeps: the code a chapter shows is the code later chapters import.

``tools/chapter_code.py`` compares each saved cell's functions and classes (a cell whose first line reads
``# Saved in vae_lesson.<module>: ...``) with the package's definitions of the same names, as syntax trees.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import chapter_code  # noqa: E402

# What each chapter's objectives say the reader builds, by the names it must define on the page.
CHAPTER_DEFINES = {
    "01_autoencoder": {"AutoEncoder", "train_epoch"},
    "02_manifold": {"PointVAE", "gaussian_nll"},
    "03_elbo_check": {"LinearGaussianModel", "elbo"},
    "04_reparameterization": {"pathwise_samples", "score_function_samples"},
    "05_vae": {"VAE", "VAELoss", "xavier_init_"},
    "08_conv_vae": {"ConvVAE"},
    "09_loss_choice": {"per_pixel_loss", "reconstruction_loss", "ReconstructionAE", "ReductionVAE"},
    "10_augmentation": {"run_augmentation_experiment"},
    "11_vq_vae": {"VectorQuantizer"},
}


def test_every_saved_definition_is_the_package_s():
    assert chapter_code.problems() == []


@pytest.mark.parametrize("chapter, names", sorted(CHAPTER_DEFINES.items()))
def test_each_chapter_shows_what_its_objectives_say_the_reader_builds(chapter, names):
    shown = {saved.name for saved in chapter_code.saved_definitions(ROOT / "notebooks" / f"{chapter}.ipynb")}
    assert names <= shown, f"{chapter} does not show {sorted(names - shown)}"


def test_a_change_on_either_side_is_found_and_write_copies_the_chapter_s_version(tmp_path):
    book = tmp_path / "book"
    shutil.copytree(ROOT / "notebooks", book / "notebooks")
    shutil.copytree(ROOT / "vae_lesson", book / "vae_lesson", ignore=shutil.ignore_patterns("__pycache__"))
    assert chapter_code.problems(book) == []
    # a reader's edit in the chapter: one constant of the VAE's loss changed
    path = book / "notebooks" / "05_vae.ipynb"
    notebook = json.loads(path.read_text())
    saved = next(s for s in chapter_code.saved_definitions(path) if s.name == "VAE")
    cell = notebook["cells"][saved.cell]
    text = "".join(cell["source"])
    assert "/ batch_size" in text
    cell["source"] = text.replace("/ batch_size", "/ (2 * batch_size)", 1)
    path.write_text(json.dumps(notebook))
    found = chapter_code.problems(book)
    assert any("VAE differs from vae_lesson.core.vae.VAE" in line for line in found), found
    # comments and blank lines are not differences; copying the chapter's version back makes them agree
    assert chapter_code.write(book) == [f"vae_lesson.core.vae.VAE <- 05_vae.ipynb cell {saved.cell}"]
    assert chapter_code.problems(book) == []
    assert "/ (2 * batch_size)" in (book / "vae_lesson" / "core" / "vae.py").read_text()
