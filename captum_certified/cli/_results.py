"""The results file: one row per example and radius, written so that a killed run resumes.

Each rank appends to its own part file. An example's rows are written in one ``write`` and
``fsync``-ed, so after Ctrl-C or ``kill -9`` a part file holds complete examples plus at most
one partial example at its end, which :func:`clean_part_file` drops before resuming.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

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


def format_rows(rows: Iterable[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    lines = []
    for row in rows:
        values = []
        for col in columns:
            v = row[col]
            values.append(repr(float(v)) if isinstance(v, float) else str(v))
        lines.append("\t".join(values) + "\n")
    return "".join(lines)


def parse_rows(text: str, columns: tuple[str, ...] = COLUMNS) -> list[dict]:
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
                elif col in _INTS:
                    row[col] = int(value)
                else:
                    row[col] = float(value)
        except ValueError:  # a line cut by kill -9
            continue
        rows.append(row)
    return rows


def complete_examples(rows: list[dict], n_radii: int) -> dict[int, list[dict]]:
    """Group rows by example, keeping only examples with all ``n_radii`` rows."""
    groups: dict[int, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["index"], []).append(row)
    return {i: g[:n_radii] for i, g in groups.items() if len(g) >= n_radii}


def clean_part_file(path: Path, n_radii: int, columns: tuple[str, ...] = COLUMNS) -> set[int]:
    """Drop a trailing partial example (and partial line); return the complete indices."""
    header = "\t".join(columns) + "\n"
    if not path.exists():
        path.write_text(header)
        return set()
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    block: list[str] = []
    current = None
    done: set[int] = set()
    for line in lines:
        if line.startswith("index\t") or not line.endswith("\n"):
            continue
        parsed = parse_rows(line, columns)
        if not parsed:
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
    if new != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(new)
        os.replace(tmp, path)
    return done


def append_example(path: Path, rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> None:
    """Append one example's rows durably (one write, flush, fsync)."""
    with open(path, "a") as f:
        f.write(format_rows(rows, columns))
        f.flush()
        os.fsync(f.fileno())


def read_parts(out: Path, n_radii: int) -> dict[int, list[dict]]:
    merged: dict[int, list[dict]] = {}
    for part in sorted((out / "parts").glob("part-*.tsv")):
        for index, rows in complete_examples(parse_rows(part.read_text()), n_radii).items():
            merged.setdefault(index, rows)
    return merged


def merge_parts(out: Path, n_radii: int) -> Path:
    """Write ``results.tsv``: every completed example exactly once, sorted by index."""
    merged = read_parts(out, n_radii)
    target = out / "results.tsv"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(HEADER + "".join(format_rows(merged[i]) for i in sorted(merged)))
    os.replace(tmp, target)
    return target
