"""The results file: one row per example and radius, written so that a killed run resumes.

Each rank appends to its own part file. An example's rows are written in one ``write`` and
``fsync``-ed, so after Ctrl-C or ``kill -9`` a part file holds complete examples plus at most
one partial example at its end, which :func:`clean_part_file` drops before resuming.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path

from captum_certified.cli._run_folder import (
    append_text,
    check_not_link,
    read_text,
    write_text,
)

COLUMNS = (
    "index",
    "label",
    "predicted",
    "correct",
    "radius",
    "metric",
    "certified",
    "certified_count",
    "k_count",
    "radius_at_level",
    "seconds",
)
HEADER = "\t".join(COLUMNS) + "\n"
#: Columns of ``results.tsv`` for several sparsities (one sampling pass): the sparsity of the
#: row's setting and the alpha its certificate holds at (``alpha / m``).
SETTINGS_COLUMNS = (*COLUMNS[:4], "sparsity", "alpha", *COLUMNS[4:])
#: Columns of ``attack.tsv`` (``captum-certified attack``).
ATTACK_COLUMNS = (
    "index",
    "label",
    "radius",
    "certified",
    "empirical",
    "attack_norm",
    "label_kept",
    "seconds",
)
_INTS = {"index", "label", "predicted", "correct", "certified_count", "k_count", "label_kept"}
_STRINGS = {"metric"}
#: Columns holding a count (an int) or a fraction (a float), as ``--sparsity``.
_COUNT_OR_FRACTION = {"sparsity"}
#: Value columns and their valid range (an overlap is in [0, 1], a cosine bound in [-1, 1]).
_RANGES = {
    "empirical": (0.0, 1.0),
    "radius": (0.0, math.inf),
    "seconds": (0.0, math.inf),
    "sparsity": (math.ulp(0.0), math.inf),
    "alpha": (math.ulp(0.0), 1.0 - 2**-53),
}


def results_columns(n_settings: int) -> tuple[str, ...]:
    """The columns of ``results.tsv`` for a run of ``n_settings`` sparsities: one sparsity
    keeps the historical layout, several add ``sparsity`` and ``alpha``."""
    return SETTINGS_COLUMNS if n_settings > 1 else COLUMNS


def header_columns(text: str) -> tuple[str, ...]:
    """The layout of a results file from its header line (``COLUMNS`` without one)."""
    first = text.split("\n", 1)[0]
    if first.startswith("index\t") and tuple(first.split("\t")) == SETTINGS_COLUMNS:
        return SETTINGS_COLUMNS
    return COLUMNS


_METRIC_RANGES = {
    "topk_overlap": (0.0, 1.0),
    "fraction_certified": (0.0, 1.0),
    "cosine_lower_bound": (-1.0, 1.0),
}


def format_rows(rows: Iterable[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    lines = []
    for row in rows:
        values = []
        for col in columns:
            v = row[col]
            values.append(repr(float(v)) if isinstance(v, float) else str(v))
        lines.append("\t".join(values) + "\n")
    return "".join(lines)


def parse_rows(text: str, columns: tuple[str, ...] | None = None) -> list[dict]:
    """The valid rows of ``text``; ``columns`` default to the layout its header names."""
    if columns is None:
        columns = header_columns(text)
    rows = []
    for line in text.splitlines():
        if not line or line.startswith("index\t"):
            continue
        parts = line.split("\t")
        if len(parts) != len(columns):
            continue
        row: dict = {}
        try:
            for col, value in zip(columns, parts):
                if col in _STRINGS:
                    row[col] = value
                elif col in _COUNT_OR_FRACTION:
                    row[col] = int(value) if value.isdigit() else float(value)
                elif col in _INTS:
                    row[col] = int(value)
                else:
                    row[col] = float(value)
        except ValueError:  # a line cut by kill -9
            continue
        if not _valid(row):  # NaN, out of range: not a row this tool wrote; recomputed
            continue
        rows.append(row)
    return rows


def _valid(row: dict) -> bool:
    """Whether ``row`` holds values this tool can have written (no NaN, in range)."""
    ranges = dict(_RANGES)
    if "metric" in row:  # a results row (an attack row's `certified` is copied, may be NaN)
        if row["metric"] not in _METRIC_RANGES:
            return False
        ranges["certified"] = _METRIC_RANGES[row["metric"]]
        ranges["radius_at_level"] = (0.0, math.inf)
    for col, (lo, hi) in ranges.items():
        if col in row and not lo <= row[col] <= hi:  # False for NaN
            return False
    return all(row[col] >= 0 for col in _INTS if col in row)


def complete_examples(rows: list[dict], n_radii: int) -> dict[int, list[dict]]:
    """Group rows by example, keeping only examples with all ``n_radii`` rows."""
    groups: dict[int, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["index"], []).append(row)
    return {i: g[:n_radii] for i, g in groups.items() if len(g) >= n_radii}


def clean_part_file(path: Path, n_radii: int, columns: tuple[str, ...] = COLUMNS) -> set[int]:
    """Drop a trailing partial example (and partial line); return the complete indices."""
    header = "\t".join(columns) + "\n"
    check_not_link(path)
    if not path.exists():
        write_text(path, header)
        return set()
    text = read_text(path)
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    block: list[str] = []
    current = None
    done: set[int] = set()
    dropped = 0
    for line in lines:
        if line.startswith("index\t") or not line.endswith("\n"):
            continue
        parsed = parse_rows(line, columns)
        if not parsed:
            dropped += len(line.rstrip("\n").split("\t")) == len(columns)
            continue
        index = parsed[0]["index"]
        if index != current:
            block, current = [], index
        block.append(line)
        if len(block) == n_radii:
            kept.extend(block)
            done.add(index)
            block = []
    new = header + "".join(kept)
    if dropped:
        print(
            f"captum-certified: warning: {path} held {dropped} invalid row(s) (NaN or out of "
            "range); their examples are computed again",
            file=sys.stderr,
        )
    if new != text:
        write_text(path, new)
    return done


def append_example(path: Path, rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> None:
    """Append one example's rows durably (one write, flush, fsync)."""
    append_text(path, format_rows(rows, columns))


def read_parts(
    out: Path, n_radii: int, columns: tuple[str, ...] = COLUMNS
) -> dict[int, list[dict]]:
    """The complete examples (``n_radii`` rows each: radii times sparsities) of the part files
    written in the layout ``columns``."""
    merged: dict[int, list[dict]] = {}
    for part in sorted((out / "parts").glob("part-*.tsv")):
        text = read_text(part)
        if header_columns(text) != columns:
            continue
        for index, rows in complete_examples(parse_rows(text, columns), n_radii).items():
            merged.setdefault(index, rows)
    return merged


def any_rows(out: Path) -> bool:
    """Whether a part file of ``out`` holds a row, whatever its layout (results were
    computed, so the run's options may no longer change)."""
    return any(parse_rows(read_text(p)) for p in sorted((out / "parts").glob("part-*.tsv")))


def merge_parts(out: Path, n_radii: int, columns: tuple[str, ...] = COLUMNS) -> Path:
    """Write ``results.tsv``: every completed example exactly once, sorted by index."""
    merged = read_parts(out, n_radii, columns)
    target = out / "results.tsv"
    header = "\t".join(columns) + "\n"
    write_text(target, header + "".join(format_rows(merged[i], columns) for i in sorted(merged)))
    return target


def incomplete_results(out: Path, n_radii: int) -> list[int]:
    """Examples whose rows ``results.tsv`` lacks: fewer than ``n_radii`` rows (radii times
    sparsities), or certified in ``parts/`` but absent (rows deleted or the file edited)."""
    columns = header_columns(read_text(out / "results.tsv"))
    groups: dict[int, int] = {}
    for row in parse_rows(read_text(out / "results.tsv")):
        groups[row["index"]] = groups.get(row["index"], 0) + 1
    short = {i for i, n in groups.items() if n < n_radii}
    if (out / "parts").is_dir():
        short |= set(read_parts(out, n_radii, columns)) - set(groups)
    return sorted(short)
