"""Check a build's reference numbers against the committed table of expected values, or update it.

Every chapter records the models it trains (``vae_lesson.chapters.reference.record_result``), and
chapter 12 shows them in one table. ``tests/expected_reference_numbers.json`` holds the values that
table is expected to show, for two profiles: ``book`` (what ``make book`` builds on the offline
data) and ``fast`` (what the test suite's fast-mode build records). A model whose configuration
changed, or whose test -ELBO, IWAE estimate or other test metric moved beyond the stated tolerance,
fails the check; the change is then explained by updating the table with a reason:

    python tools/reference_numbers.py check                 # after make book (make book runs it)
    python tools/reference_numbers.py check --profile fast --results DIR/reference_results_fast.json
    python tools/reference_numbers.py update --because "06 trains 10 epochs instead of 8"

``update`` copies the recorded rows of the profile into the table and appends the reason, with
the date, to the table's list of changes: the commit that changes a number says why.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_lesson.chapters.reference import (  # noqa: E402
    CONFIGURATION,
    FAST_RESULTS_FILE,
    RESULTS_FILE,
    TOLERANCE,
    compare_with_expected,
    expected_rows,
    load_results,
)
from vae_lesson.infra.atomic import write_text_atomically  # noqa: E402

EXPECTED = ROOT / "tests" / "expected_reference_numbers.json"
# make book executes the notebooks in notebooks/, whose output folder is notebooks/generated.
DEFAULT_RESULTS = {
    "book": ROOT / "notebooks" / "generated" / RESULTS_FILE,
    "fast": ROOT / "notebooks" / "generated" / FAST_RESULTS_FILE,
}
KEPT = (*CONFIGURATION, "test_neg_elbo", "test_iwae", "metric")


def read_table(path: Path = EXPECTED) -> dict:
    if not path.is_file():
        return {"profiles": {}, "changes": []}
    return json.loads(path.read_text())


def check(results: Path, profile: str, expected_path: Path = EXPECTED) -> list:
    """The differences between the rows in ``results`` and the expected table, as sentences."""
    rows = load_results(results)
    if not rows:
        return [f"no rows recorded in {results}: build the book (or run the chapters) first"]
    table = read_table(expected_path)
    return compare_with_expected(rows, expected_rows(table, profile), table.get("tolerance"))


def update(results: Path, profile: str, because: str, expected_path: Path = EXPECTED) -> int:
    rows = load_results(results)
    if not rows:
        raise SystemExit(f"no rows recorded in {results}: nothing to update from")
    if not because.strip():
        raise SystemExit("--because must say why the numbers changed")
    table = read_table(expected_path)
    table.setdefault("about", __doc__.split("\n\n")[0])
    table["tolerance"] = TOLERANCE
    before = table.setdefault("profiles", {}).get(profile, {})
    new = {}
    for row in rows:
        key = f"{row['chapter']}/{row['name']}"
        new[key] = {field: row.get(field) for field in KEPT}
        if before.get(key, {}).get("tolerance"):  # a row's own tolerance stays with it
            new[key]["tolerance"] = before[key]["tolerance"]
    table["profiles"][profile] = new
    table.setdefault("changes", []).append(
        {"date": datetime.date.today().isoformat(), "profile": profile, "because": because.strip()}
    )
    order = ("about", "tolerance", "profiles", "changes")
    table = {key: table[key] for key in order} | {k: v for k, v in table.items() if k not in order}
    write_text_atomically(expected_path, json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    return len(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("check", "update"))
    parser.add_argument("--profile", choices=("book", "fast"), default="book")
    parser.add_argument(
        "--results",
        type=Path,
        help="the recorded rows (default: the profile's file in notebooks/generated)",
    )
    parser.add_argument("--expected", type=Path, default=EXPECTED)
    parser.add_argument("--because", default="", help="update: why the numbers changed")
    args = parser.parse_args(argv)
    results = args.results or DEFAULT_RESULTS[args.profile]
    if args.command == "update":
        count = update(results, args.profile, args.because, args.expected)
        print(f"{args.expected}: {count} {args.profile} rows written")
        return 0
    problems = check(results, args.profile, args.expected)
    if problems:
        print(f"The reference numbers differ from {args.expected.name} ({args.profile} profile):")
        for problem in problems:
            print(f"  - {problem}")
        print(
            "If the change is intended, record it with the reason:\n"
            f'  python tools/reference_numbers.py update --profile {args.profile} --because "..."'
        )
        return 1
    table = read_table(args.expected)
    tol = {**TOLERANCE, **table.get("tolerance", {})}
    own = [key for key, row in expected_rows(table, args.profile).items() if row.get("tolerance")]
    print(
        f"Reference numbers: every {args.profile} row matches {args.expected.name} "
        f"(test -ELBO and IWAE within {tol['nats_relative']:.0%} + {tol['nats_absolute']} nats, "
        f"other metrics within {tol['metric_relative']:.0%}"
        + (f"; {len(own)} row(s) with a wider tolerance of their own" if own else "")
        + ")."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
