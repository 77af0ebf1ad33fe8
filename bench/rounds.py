"""Baseline and subject measured in turns on one machine in one run; the ratio is the median
of per-round ratios (bench.results.median_of_ratios)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.results import median_of_ratios
from bench.wrk import Outcome


@dataclass(slots=True)
class Interleaved:
    baseline: list[Outcome] = field(default_factory=list)
    subject: list[Outcome] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        pairs = [
            (s.per_second, b.per_second) for s, b in zip(self.subject, self.baseline, strict=True)
        ]
        return median_of_ratios(pairs)

    @property
    def baseline_rate(self) -> float:
        return statistics.median(o.per_second for o in self.baseline)

    @property
    def subject_rate(self) -> float:
        return statistics.median(o.per_second for o in self.subject)

    def summary(self) -> dict[str, object]:
        return {
            "rounds": len(self.subject),
            "round_ratios": [
                round(s.per_second / b.per_second, 3)
                for s, b in zip(self.subject, self.baseline, strict=True)
                if b.per_second
            ],
            "subject_p50_ms": round(statistics.median(o.p50_ms for o in self.subject), 2),
            "subject_p99_ms": round(statistics.median(o.p99_ms for o in self.subject), 2),
            "baseline_p50_ms": round(statistics.median(o.p50_ms for o in self.baseline), 2),
            "baseline_p99_ms": round(statistics.median(o.p99_ms for o in self.baseline), 2),
            "subject_statuses": statuses(self.subject),
            "baseline_statuses": statuses(self.baseline),
        }


def statuses(outcomes: list[Outcome]) -> dict[str, int]:
    """Responses per status over all runs, and socket errors (connect, read, timeout...)."""
    total: Counter[str] = Counter()
    for outcome in outcomes:
        total.update({str(status): n for status, n in outcome.statuses.items()})
        total.update({f"socket {kind}": n for kind, n in outcome.socket_errors.items()})
    return dict(sorted(total.items()))


def interleave(
    measure_baseline: Callable[[], Outcome],
    measure_subject: Callable[[], Outcome],
    rounds: int,
) -> Interleaved:
    """`rounds` pairs, back to back; which side goes first alternates."""
    result = Interleaved()
    for round_no in range(rounds):
        if round_no % 2:
            subject = measure_subject()
            baseline = measure_baseline()
        else:
            baseline = measure_baseline()
            subject = measure_subject()
        result.baseline.append(baseline)
        result.subject.append(subject)
    return result
