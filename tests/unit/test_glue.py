"""vae_lesson.infra.glue: numbers for the book's text, stored with myst-nb where it is installed."""

import sys

import numpy as np
import pytest
import torch

from vae_lesson.infra.glue import glue


def test_glue_stores_the_value_with_myst_nb_and_returns_it(monkeypatch):
    import myst_nb

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    assert glue("kl_20d", 21.5) == 21.5
    assert glue("n_used", np.int64(3)) == 3
    assert glue("ppl", np.float32(2.5)) == 2.5
    assert calls == [("kl_20d", 21.5, False), ("n_used", 3, False), ("ppl", 2.5, False)]
    # NumPy scalars are stored as plain Python numbers, whose text myst-nb can format
    assert [type(value) for _, value, _ in calls] == [float, int, float]


def test_glue_without_myst_nb_only_returns_the_value(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb raises ImportError, as in Colab
    assert glue("kl_2d", 6.25) == 6.25


@pytest.mark.parametrize("name", ["", "kl 20d", "2d", None, 3])
def test_glue_refuses_a_name_the_text_cannot_use(name):
    with pytest.raises(ValueError, match="Python identifier"):
        glue(name, 1.0)


@pytest.mark.parametrize("value", [torch.tensor(1.0), [1.0], None, True])
def test_glue_takes_plain_numbers_and_strings_only(value):
    with pytest.raises(TypeError, match="takes a number or a string"):
        glue("value", value)
