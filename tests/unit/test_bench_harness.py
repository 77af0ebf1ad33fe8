"""The bench's own arithmetic and bookkeeping (the measurements themselves run in `make bench`)."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import readme
from bench.results import Result, Target, median_of_ratios, write
from bench.rounds import interleave, statuses
from bench.wrk import Load, Outcome, parse


def outcome(requests: int, seconds: float = 1.0, **statuses: int) -> Outcome:
    return Outcome(
        requests=requests,
        seconds=seconds,
        p50_ms=1.0,
        p90_ms=2.0,
        p99_ms=3.0,
        max_ms=4.0,
        statuses={int(k.removeprefix("s")): v for k, v in statuses.items()},
    )


def test_the_ratio_is_the_median_of_per_round_ratios_not_a_ratio_of_medians() -> None:
    # Round 2 caught a slow stretch on the subject side only: one bad pair, dropped.
    pairs = [(50.0, 100.0), (10.0, 100.0), (60.0, 120.0)]
    assert median_of_ratios(pairs) == 0.5
    # Medians of the rates would give 50/100 here too, but not when a stretch hits both
    # sides of one round: 20/40 is still 0.5 for that round.
    assert median_of_ratios([(50.0, 100.0), (20.0, 40.0), (55.0, 110.0)]) == 0.5


def test_a_round_without_baseline_requests_is_left_out_and_none_at_all_is_nan() -> None:
    assert median_of_ratios([(50.0, 0.0), (30.0, 60.0)]) == 0.5
    assert math.isnan(median_of_ratios([(50.0, 0.0)]))


def test_targets_hold_the_ratio_or_the_value_to_their_bound() -> None:
    assert Target("ratio", ">=", 1.0).met(value=10.0, ratio=1.0)
    assert not Target("ratio", ">=", 1.0).met(value=10.0, ratio=0.99)
    assert Target("value", "<=", 0).met(value=0.0, ratio=0.3)
    assert not Target("value", "<=", 5.0).met(value=5.1, ratio=1.0)
    assert not Target("ratio", ">=", 0.5).met(value=1.0, ratio=float("nan"))
    assert str(Target("value", ">=", 20_000)) == "value >= 20000"


def test_interleaved_rounds_alternate_which_side_goes_first() -> None:
    calls: list[str] = []

    def side(name: str, requests: int) -> Outcome:
        calls.append(name)
        return outcome(requests, s200=requests)

    rounds = interleave(lambda: side("b", 100), lambda: side("s", 40), rounds=3)
    assert calls == ["b", "s", "s", "b", "b", "s"]
    assert rounds.ratio == pytest.approx(0.4)
    assert rounds.summary()["subject_statuses"] == {"200": 120}


def test_statuses_add_up_responses_and_socket_errors_over_runs() -> None:
    first = outcome(10, s200=8, s503=2)
    second = Outcome(5, 1.0, 1, 1, 1, 1, {200: 5}, {"timeout": 3})
    assert statuses([first, second]) == {"200": 13, "503": 2, "socket timeout": 3}


def test_wrk_summary_line_is_parsed_from_the_scripts_output() -> None:
    stdout = (
        "Running 2s test @ http://127.0.0.1:1\n"
        'BENCH-JSON {"requests": 2000, "duration_us": 2000000, "errors": {"connect": 0, '
        '"read": 1, "write": 0, "status": 4, "timeout": 0}, "latency_us": {"p50": 1500, '
        '"p90": 2500, "p99": 9000, "max": 12000, "mean": 1700.5}, '
        '"statuses": {"200": 1996, "503": 4}}\n'
    )
    parsed = parse(stdout)
    assert parsed.per_second == 1000.0
    assert (parsed.p50_ms, parsed.p99_ms, parsed.max_ms) == (1.5, 9.0, 12.0)
    assert parsed.count(500, 599) == 4
    assert parsed.socket_errors == {"read": 1}


def test_wrk_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no summary"):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_script_arguments_give_each_run_its_own_idempotency_keys(tmp_path: Path) -> None:
    load = Load(
        path="/api/v1/orders",
        method="POST",
        ids_file=tmp_path / "ids.txt",
        token="t0k",
        body='{"a": 1}',
        idempotency="run1",
    )
    assert load.script_args("7") == [
        "method=POST",
        "path=/api/v1/orders",
        f"ids={tmp_path / 'ids.txt'}",
        "token=t0k",
        'body={"a": 1}',
        "idempotency=run1-7",
    ]


def results_of_a_run() -> list[Result]:
    return [
        Result("1 read", 800.0, "req/s", 1000.0, 0.8, Target("ratio", ">=", 1.0), {"rounds": 5}),
        Result("8 memory", 1.5, "%", None, 1.015, Target("value", "<=", 5.0)),
    ]


def test_results_go_to_latest_json_and_append_to_history_csv(tmp_path: Path) -> None:
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    latest = write(results_of_a_run(), tmp_path, mode="quick", now=now)
    write(results_of_a_run()[:1], tmp_path, mode="partial", now=now)

    document = json.loads(latest.read_text())
    assert document["date"] == "2026-12-03T08:00:00+00:00"
    assert document["mode"] == "partial"  # latest is the last run, whole
    assert document["scenarios"]["1 read"] == {
        "value": 800.0,
        "unit": "req/s",
        "baseline": 1000.0,
        "ratio": 0.8,
        "target": "ratio >= 1",
        "met": False,
        "details": {"rounds": 5},
    }
    with (tmp_path / "history.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["mode"], r["scenario"], r["met"]) for r in rows] == [
        ("quick", "1 read", "False"),
        ("quick", "8 memory", "True"),
        ("partial", "1 read", "False"),
    ]
    assert rows[1]["baseline"] == ""


def test_the_readme_block_between_the_markers_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text(f"# X\n\nbefore\n{readme.START}\nold table\n{readme.END}\nafter\n")
    latest = write(results_of_a_run(), tmp_path)
    readme.update(results_of_a_run(), latest, target)
    text = target.read_text()
    assert text.startswith("# X\n\nbefore\n<!-- bench:start -->\nMeasured ")
    assert "old table" not in text
    assert "| 1 read | 800.0 req/s | 1,000.0 | 0.800 | ratio >= 1 | **no** |" in text
    assert "| 8 memory | 1.5 % |  | 1.015 | value <= 5 | yes |" in text
    assert text.endswith(f"{readme.END}\nafter\n")


def test_a_readme_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="bench:start"):
        readme.replace_block("# no markers\n", "table")
