"""vae_lesson.infra.glue: numbers for the book's text, stored with myst-nb where it is installed and
printed outside the book's build; the text's claims, checked against a run."""

import sys

import numpy as np
import pytest
import torch

from vae_lesson.infra.glue import BUILD_VARIABLE, check_text, glue


@pytest.fixture
def in_the_build(monkeypatch):
    monkeypatch.setenv(BUILD_VARIABLE, "1")


@pytest.fixture
def outside_the_build(monkeypatch):
    monkeypatch.delenv(BUILD_VARIABLE, raising=False)


def test_glue_stores_the_value_with_myst_nb_and_returns_it(monkeypatch, in_the_build, capsys):
    import myst_nb

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    assert glue("kl_20d", 21.5) == 21.5
    assert glue("n_used", np.int64(3)) == 3
    assert glue("ppl", np.float32(2.5)) == 2.5
    assert calls == [("kl_20d", 21.5, False), ("n_used", 3, False), ("ppl", 2.5, False)]
    # NumPy scalars are stored as plain Python numbers, whose text myst-nb can format
    assert [type(value) for _, value, _ in calls] == [float, int, float]
    assert capsys.readouterr().out == ""  # the build's page shows the numbers in the text


def test_glue_outside_the_build_prints_what_the_text_names(monkeypatch, outside_the_build, capsys):
    """A student notebook's text names the value (kl_20d) where the book shows the number."""
    import myst_nb

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value)))
    glue("kl_20d", 21.534)
    glue("n_used", np.int64(3))
    glue("data_name", "MNIST")
    assert capsys.readouterr().out == "kl_20d = 21.53\nn_used = 3\ndata_name = 'MNIST'\n"
    assert calls == [("kl_20d", 21.534), ("n_used", 3), ("data_name", "MNIST")]


def test_glue_without_myst_nb_prints_and_returns_the_value(monkeypatch, outside_the_build, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb raises ImportError, as in Colab
    assert glue("kl_2d", 6.25) == 6.25
    assert capsys.readouterr().out == "kl_2d = 6.25\n"


def test_a_claim_that_holds_passes_silently_everywhere(monkeypatch, capsys):
    for building in ("1", ""):
        monkeypatch.setenv(BUILD_VARIABLE, building)
        assert check_text(np.float64(2.0) > 1, "two is more than one") is True
    assert capsys.readouterr().out == ""


def test_a_claim_that_fails_stops_the_build(in_the_build):
    with pytest.raises(AssertionError, match="revise the text: it says that the 2-D KL is lower"):
        check_text(torch.tensor(3.0) < 2.0, "the 2-D KL is lower")


def test_a_claim_that_fails_outside_the_build_is_a_note(outside_the_build, capsys):
    assert check_text(False, "the 2-D KL is lower") is False
    out = capsys.readouterr().out
    assert out.startswith("Note: the text says that the 2-D KL is lower; this run does not bear it out")


@pytest.mark.parametrize("claim", ["", "  ", None])
def test_a_check_names_its_claim(claim):
    with pytest.raises(ValueError, match="needs the claim"):
        check_text(True, claim)


@pytest.mark.parametrize("name", ["", "kl 20d", "2d", None, 3])
def test_glue_refuses_a_name_the_text_cannot_use(name):
    with pytest.raises(ValueError, match="Python identifier"):
        glue(name, 1.0)


@pytest.mark.parametrize("value", [torch.tensor(1.0), [1.0], None, True])
def test_glue_takes_plain_numbers_and_strings_only(value):
    with pytest.raises(TypeError, match="takes a number or a string"):
        glue("value", value)
