"""A scenario's result, its verdict, and where results go: a table on stdout,
bench/results/latest.json and a row per scenario appended to bench/results/history.csv."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

RESULTS = Path(__file__).resolve().parent / "results"
HISTORY_FIELDS = [
    "date",
    "machine",
    "mode",
    "scenario",
    "value",
    "unit",
    "baseline",
    "ratio",
    "target",
    "met",
]


@dataclass(frozen=True, slots=True)
class Target:
    """`ratio >= 1.0`, `value <= 2.0`, ...: which number is held to which bound."""

    of: Literal["ratio", "value"]
    op: Literal[">=", "<="]
    bound: float

    def met(self, value: float, ratio: float) -> bool:
        number = self.ratio_or_value(value, ratio)
        if math.isnan(number):
            return False
        return number >= self.bound if self.op == ">=" else number <= self.bound

    def ratio_or_value(self, value: float, ratio: float) -> float:
        return ratio if self.of == "ratio" else value

    def __str__(self) -> str:
        return f"{self.of} {self.op} {self.bound:g}"


@dataclass(slots=True)
class Result:
    """One scenario. `value` is the subject's number in `unit`; `baseline` the same-run
    baseline's (None where there is none); `ratio` value/baseline or as the scenario defines."""

    name: str
    value: float
    unit: str
    baseline: float | None
    ratio: float
    target: Target | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def as_json(self) -> dict[str, Any]:
        return {
            "value": _rounded(self.value),
            "unit": self.unit,
            "baseline": None if self.baseline is None else _rounded(self.baseline),
            "ratio": _rounded(self.ratio),
            "target": None if self.target is None else str(self.target),
            "met": self.met,
            "details": self.details,
        }


def _rounded(number: float) -> float | None:
    return None if math.isnan(number) else round(number, 4)


def median_of_ratios(pairs: list[tuple[float, float]]) -> float:
    """The median of per-round subject/baseline ratios: a slow stretch of a shared machine
    lands on one pair (both sides measured back to back) and the median drops it."""
    ratios = [subject / baseline for subject, baseline in pairs if baseline > 0]
    return statistics.median(ratios) if ratios else float("nan")


def machine() -> str:
    cpus = os.cpu_count()  # the machine's, not this process's (pinned to the load core)
    return f"{platform.node()} {platform.machine()} {cpus} cpu {platform.python_version()}"


def table(results: list[Result]) -> str:
    rows = [("scenario", "value", "baseline", "ratio", "target", "")]
    for r in results:
        verdict = {None: "", True: "ok", False: "NOT MET"}[r.met]
        baseline = "" if r.baseline is None else f"{r.baseline:,.1f}"
        rows.append(
            (
                r.name,
                f"{r.value:,.1f} {r.unit}",
                baseline,
                f"{r.ratio:.3f}",
                "" if r.target is None else str(r.target),
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def markdown(results: list[Result], *, date: str, machine_name: str) -> str:
    lines = [
        f"Measured {date} on {machine_name}.",
        "",
        "| scenario | value | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        baseline = "" if r.baseline is None else f"{r.baseline:,.1f}"
        met = {None: "", True: "yes", False: "**no**"}[r.met]
        target = "" if r.target is None else f"{r.target.of} {r.target.op} {r.target.bound:g}"
        value = f"{r.value:,.1f} {r.unit}"
        lines.append(f"| {r.name} | {value} | {baseline} | {r.ratio:.3f} | {target} | {met} |")
    return "\n".join(lines)


def write(
    results: list[Result],
    directory: Path = RESULTS,
    *,
    mode: str = "full",
    now: datetime | None = None,
) -> Path:
    """latest.json (this run, whole) and history.csv (one row per scenario, appended).
    `mode`: full, quick (BENCH_QUICK: shorter rounds, smaller sizes) or partial (a filter)."""
    directory.mkdir(parents=True, exist_ok=True)
    date = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    name = machine()
    latest = directory / "latest.json"
    document = {
        "date": date,
        "machine": name,
        "mode": mode,
        "scenarios": {r.name: r.as_json() for r in results},
    }
    latest.write_text(json.dumps(document, indent=2, default=str) + "\n")
    history = directory / "history.csv"
    new = not history.exists()
    with history.open("a", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=HISTORY_FIELDS)
        if new:
            writer.writeheader()
        for r in results:
            writer.writerow(
                {
                    "date": date,
                    "machine": name,
                    "mode": mode,
                    "scenario": r.name,
                    "value": _rounded(r.value),
                    "unit": r.unit,
                    "baseline": None if r.baseline is None else _rounded(r.baseline),
                    "ratio": _rounded(r.ratio),
                    "target": "" if r.target is None else str(r.target),
                    "met": "" if r.met is None else r.met,
                }
            )
    return latest
