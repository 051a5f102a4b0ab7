"""Reference numbers: every chapter records the models it trained, and one table reports them all.

A chapter calls :func:`record_result` after training; the rows are merged into one JSON file in the
output folder (written atomically), and the reference chapter renders them with
:func:`results_table`. Each row says what a number means: which data (and whether pixels were
continuous or binarized, since their likelihoods are not comparable), which latent size, how many
epochs, which seed, how long it took on which machine, the test negative ELBO per image and, for
VAEs, an importance-weighted estimate.

The numbers are also kept honest: :func:`compare_with_expected` checks a build's rows against a
committed table of expected values (``tests/expected_reference_numbers.json``), so that a change
in any model's numbers beyond a stated tolerance is seen and explained
(``tools/reference_numbers.py``).
Fast-mode rows go to a separate file and are checked against their own table.
"""

from __future__ import annotations

import html
import json
import os
import platform
import re
from pathlib import Path

import torch
from torch import nn

from ..infra.atomic import write_text_atomically
from ..infra.settings import fast_mode, output_dir

__all__ = [
    "record_result",
    "record_row",
    "load_results",
    "results_table",
    "results_path",
    "machine_description",
    "data_label",
    "compare_with_expected",
    "expected_rows",
    "TOLERANCE",
]

RESULTS_FILE = "reference_results.json"
# Fast-mode rows (tiny runs, for the test suite) never mix with the book's.
FAST_RESULTS_FILE = "reference_results_fast.json"
COLUMNS = (
    ("name", "model (chapter)"),
    ("data", "data"),
    ("pixels", "pixels"),
    ("latent", "latent"),
    ("epochs", "epochs"),
    ("seed", "seed"),
    ("train_seconds", "train time (s)"),
    ("test_neg_elbo", "test −ELBO (nats per example)"),
    ("test_iwae", "test −log p(x), IWAE"),
    ("metric", "other test metric"),
)
# The decimals a row keeps of each measured number, and the table shows: seconds to 0.1 s, nats to
# 0.01 (a run repeated on another processor moves them by more than that).
DECIMALS = {"train_seconds": 1, "test_neg_elbo": 2, "test_iwae": 2}


def results_path() -> Path:
    """The JSON file the rows are kept in (inside :func:`vae_lesson.infra.settings.output_dir`).

    In fast mode, a separate file: the tiny runs of the test suite never reach the book's table.
    """
    return output_dir() / (FAST_RESULTS_FILE if fast_mode() else RESULTS_FILE)


def machine_description() -> str:
    """A short description of this machine, e.g. 'x86_64, 2 CPU cores, torch 2.13.0 (2 threads)'."""
    threads = torch.get_num_threads()
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__.split('+')[0]} "
        f"({threads} thread{'' if threads == 1 else 's'})"
    )


_DATA_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "digits": "8x8 digits"}


def data_label(dataset, n_train: int) -> str:
    """The table's **data** entry for a model trained on the first ``n_train`` images of
    ``dataset`` (a :class:`vae_lesson.ImageDataset`), e.g.
    "MNIST (offline subset), 4,000 training images": MNIST says whether it was the offline subset
    or the full set, since numbers on the two are not comparable."""
    name = _DATA_NAMES.get(dataset.name, dataset.name)
    if dataset.name == "mnist":
        name += f" ({'full' if dataset.is_full else 'offline subset'})"
    return f"{name}, {n_train:,} training images"


def load_results(path=None) -> list:
    """All recorded rows (a list of dicts), in chapter order; [] if nothing was recorded yet."""
    path = Path(path) if path is not None else results_path()
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); delete it and re-run the chapters"
        ) from None
    return sorted(rows.values(), key=lambda row: (row.get("chapter", ""), row.get("name", "")))


def _vae_like(model) -> bool:
    return callable(getattr(model, "encode", None)) and callable(
        getattr(model, "log_likelihood", None)
    )


def record_result(
    chapter: str,
    name: str,
    model: nn.Module,
    history,
    *,
    data: str,
    binarized: bool = False,
    pixels: str | None = None,
    seed: int = 0,
    x_test: torch.Tensor | None = None,
    iwae_k: int = 0,
    metric: str | None = None,
    latent=None,
    path=None,
) -> dict:
    """Add (or replace) the row for model ``name`` trained in ``chapter``, and return it.

    Args:
        chapter: the notebook's name, e.g. "05_vae".
        name: a short name for the model, unique within the book, e.g. "VAE, 20-D latent".
        model: the trained model (its ``config`` gives the latent size).
        history: the :class:`vae_lesson.History` of its training (epochs, time, test losses).
        data: which data it was trained on, e.g. ``mnist.source`` or
            "Fashion-MNIST, 10,000 training images".
        binarized: True if pixels were binarized (NLLs on binarized and continuous pixels are not
            comparable).
        pixels: what the data values are, when they are not images, e.g. "3-D points"; overrides
            ``binarized``.
        seed: the training seed.
        x_test: test examples; for VAEs (models with ``encode`` and ``log_likelihood``) the test
            -ELBO is evaluated on them with C = 1 (:func:`vae_lesson.chapters.iwae.neg_elbo`),
            whatever the training loss, and the importance-weighted estimate uses them.
        iwae_k: number of importance samples; 0 skips the estimate.
        metric: another test number worth reporting, with its name and unit, e.g.
            "test MSE per pixel 0.0112"; default for models without a likelihood: the last test
            loss of ``history``.
        latent: the latent size, when ``model.config["n_latent"]`` does not say it, e.g.
            "7x7 grid, 64 codes".
    In fast mode the row goes to the fast-mode file (see :func:`results_path`).
    """
    if not history.epoch_seconds:
        raise ValueError("history is empty: record a model after training it")
    config = getattr(model, "config", {})
    test = history.test or {}
    neg_elbo_value = iwae_value = None
    if _vae_like(model) and x_test is not None:
        from .iwae import iwae_bound, neg_elbo

        neg_elbo_value = neg_elbo(model, x_test).mean().item()
        if iwae_k:
            iwae_value = -iwae_bound(model, x_test, K=iwae_k).mean().item()
    if metric is None and not _vae_like(model) and test:
        metric = f"test loss {test['total'][-1]:.4g}"
    return record_row(
        chapter,
        name,
        model=type(model).__name__,
        data=data,
        binarized=binarized,
        pixels=pixels,
        latent=latent if latent is not None else config.get("n_latent"),
        epochs=history.num_epochs,
        seed=seed,
        train_seconds=sum(history.epoch_seconds),
        test_neg_elbo=neg_elbo_value,
        test_iwae=iwae_value,
        iwae_k=iwae_k if iwae_value is not None else None,
        metric=metric,
        path=path,
    )


def record_row(
    chapter: str,
    name: str,
    *,
    model: str,
    data: str,
    epochs,
    seed,
    train_seconds: float,
    latent=None,
    binarized: bool = False,
    pixels: str | None = None,
    test_neg_elbo: float | None = None,
    test_iwae: float | None = None,
    iwae_k: int | None = None,
    metric: str | None = None,
    path=None,
) -> dict:
    """Add (or replace) a row from numbers rather than from a model: results of several runs.

    ``epochs`` and ``seed`` may be strings such as "seeds 0-2"; ``train_seconds`` is the total over
    the runs the row stands for. The other arguments are those of :func:`record_result`.
    """
    row = {
        "chapter": chapter,
        "name": name,
        "model": model,
        "data": data,
        "pixels": pixels or ("binarized" if binarized else "continuous"),
        "latent": latent,
        "epochs": epochs,
        "seed": seed,
        "train_seconds": _rounded(train_seconds, "train_seconds"),
        "test_neg_elbo": _rounded(test_neg_elbo, "test_neg_elbo"),
        "test_iwae": _rounded(test_iwae, "test_iwae"),
        "iwae_k": iwae_k if test_iwae is not None else None,
        "metric": metric,
        "machine": machine_description(),
    }
    path = Path(path) if path is not None else results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {f"{r['chapter']}/{r['name']}": r for r in load_results(path)}
    rows[f"{chapter}/{name}"] = row
    write_text_atomically(path, json.dumps(rows, indent=1, sort_keys=True))
    return row


def _rounded(value, key: str) -> float | None:
    return None if value is None else round(float(value), DECIMALS[key])


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4f}"
    return str(value)


_MIN_WIDTH = {"name": "12em", "data": "11em", "test_iwae": "8em", "metric": "16em"}


def results_table(rows, fmt: str = "html") -> str:
    """The rows as an HTML table (``fmt="html"``) or as Markdown (``fmt="markdown"``).

    Display the HTML with ``IPython.display.HTML``.
    """
    if fmt not in ("html", "markdown"):
        raise ValueError(f'fmt must be "html" or "markdown", got {fmt!r}')
    if not rows:
        return (
            "No results recorded yet: run the chapters first (the book build runs them in order)."
        )
    body = []
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            value = row.get(key)
            if key in DECIMALS and value is not None:  # the decimals record_row keeps
                value = f"{value:,.{DECIMALS[key]}f}"
                if key == "test_iwae":
                    value += f" (K = {row['iwae_k']})"
            elif key == "name":
                value = f"{value} ({row.get('chapter', '?')})"
            cells.append(_cell(value))
        body.append(cells)
    titles = [title for _, title in COLUMNS]
    if fmt == "markdown":
        lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in cells) + " |" for cells in body]
        return "\n".join(lines)
    # The columns of words get a least width: squeezed into a narrow column, their text would
    # make each row many lines tall (the table scrolls sideways in its box instead).
    head = "".join(
        f'<th style="min-width: {_MIN_WIDTH[key]}">{html.escape(t)}</th>' if key in _MIN_WIDTH
        else f"<th>{html.escape(t)}</th>"
        for key, t in COLUMNS
    )
    rows_html = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in body
    )
    return (
        '<table class="table" style="font-size: 0.8em">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>"
    )


# --- The committed table of expected numbers -------------------------------------------------

# Training is seeded and, on one machine and one torch version, bit for bit repeatable; across
# processors the last bits of a matrix product can differ and training carries that a little
# further (most rows come out the same to the last decimal on an AMD and an Intel processor; a few
# models move). A number may move by this much before the check fails.
TOLERANCE = {
    "nats_relative": 0.01,  # test -ELBO and IWAE: within 1 % of the expected value ...
    "nats_absolute": 0.1,  # ... plus 0.1 nats (for the swiss roll's numbers near zero)
    "metric_relative": 0.02,  # each number in "other test metric": within 2 % ...
    "count_absolute": 0,  # ... and one written without a decimal point (a count) within this many
}
# A row of the committed table may widen these for itself: {"tolerance": {"nats_relative": 0.03,
# "because": "..."}} in the row, for a model that moves more than the others between processors.
# What a row was trained with: these must match exactly.
CONFIGURATION = ("model", "data", "pixels", "latent", "epochs", "seed", "iwae_k")
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")


def row_tolerance(row: dict, key: str = "") -> dict:
    """The tolerances an expected row sets for itself (without its "because"); a key that is not one
    of :data:`TOLERANCE`'s, or a row tolerance without a reason, is an error in the table."""
    own = dict(row.get("tolerance") or {})
    if own and not str(own.pop("because", "")).strip():
        raise ValueError(f"{key}: the row's tolerance must say why (a \"because\")")
    unknown = sorted(set(own) - set(TOLERANCE))
    if unknown:
        raise ValueError(f"{key}: unknown tolerance {unknown}; known: {sorted(TOLERANCE)}")
    return own


def expected_rows(table: dict, profile: str) -> dict:
    """The expected rows of ``profile`` ("book" or "fast") in a table read from its JSON file."""
    try:
        return table["profiles"][profile]
    except (KeyError, TypeError):
        raise ValueError(
            f"the expected table has no profile {profile!r}; it has "
            f"{sorted((table or {}).get('profiles', {}))}"
        ) from None


def _numbers(text: str):
    return [float(n.replace(",", "")) for n in _NUMBER.findall(text)]


def _close(actual: float, expected: float, relative: float, absolute: float = 0.0) -> bool:
    return abs(actual - expected) <= relative * abs(expected) + absolute


def compare_with_expected(rows, expected: dict, tolerance: dict | None = None) -> list:
    """Every difference between recorded ``rows`` and the ``expected`` rows, as sentences.

    ``rows`` is what :func:`load_results` returns; ``expected`` maps "chapter/name" to a row. A
    model recorded but not expected, expected but not recorded, trained with another
    configuration (:data:`CONFIGURATION`), or whose numbers moved beyond ``tolerance``
    (:data:`TOLERANCE`) is a difference. An empty list means the build reproduced the table.
    """
    base = {**TOLERANCE, **(tolerance or {})}
    actual = {f"{row['chapter']}/{row['name']}": row for row in rows}
    problems = []
    for key in sorted(set(expected) - set(actual)):
        problems.append(f"{key}: expected but not recorded by the build")
    for key in sorted(set(actual) - set(expected)):
        problems.append(f"{key}: recorded but not in the expected table")
    for key in sorted(set(actual) & set(expected)):
        got, want = actual[key], expected[key]
        tol = {**base, **row_tolerance(want, key)}
        for field in CONFIGURATION:
            if got.get(field) != want.get(field):
                problems.append(
                    f"{key}: {field} is {got.get(field)!r}, expected {want.get(field)!r}"
                )
        for field in ("test_neg_elbo", "test_iwae"):
            a, e = got.get(field), want.get(field)
            if (a is None) != (e is None):
                problems.append(f"{key}: {field} is {a}, expected {e}")
            elif a is not None and not _close(a, e, tol["nats_relative"], tol["nats_absolute"]):
                problems.append(
                    f"{key}: {field} is {a:.2f} nats, expected {e:.2f} "
                    f"(a change of {a - e:+.2f}, beyond the tolerance)"
                )
        a_text, e_text = got.get("metric") or "", want.get("metric") or ""
        a_nums, e_nums = _numbers(a_text), _numbers(e_text)
        if _NUMBER.sub("#", a_text) != _NUMBER.sub("#", e_text) or len(a_nums) != len(e_nums):
            problems.append(f"{key}: metric reads {a_text!r}, expected {e_text!r}")
        elif not all(
            _close(a, e, tol["metric_relative"], tol["count_absolute"] if "." not in text else 0.0)
            for a, e, text in zip(a_nums, e_nums, _NUMBER.findall(e_text))
        ):
            problems.append(
                f"{key}: metric reads {a_text!r}, expected {e_text!r} (beyond the tolerance)"
            )
    return problems
