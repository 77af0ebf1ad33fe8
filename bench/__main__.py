"""`make bench`: every scenario is a ratio against a baseline measured in the same run.

Absolute numbers on a shared machine are noise; a ratio of two measurements taken
side by side in one process tree is not. Each scenario module exposes
`run() -> dict` with at least `name`, `ratio` and `target` (or `None`), plus its raw numbers.
Results are printed and written to `var/bench.json`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

SCENARIOS = [
    "bench.scenario_health",
    "bench.scenario_login",
    "bench.scenario_orders",
    "bench.scenario_products",
    "bench.scenario_workflow",
]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("only", nargs="*", help="scenario module suffixes to run")
    args = parser.parse_args()
    results = []
    for module_name in SCENARIOS:
        if args.only and not any(module_name.endswith(o) for o in args.only):
            continue
        module = importlib.import_module(module_name)
        outcome = module.run()  # one result, or a list of them (one per measurement)
        for result in outcome if isinstance(outcome, list) else [outcome]:
            results.append(result)
            report(result)
    Path("var").mkdir(exist_ok=True)
    Path("var/bench.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


def report(result: dict[str, Any]) -> None:
    target = result.get("target")
    verdict = "" if target is None else ("  ok" if result["ratio"] >= target else "  BELOW TARGET")
    print(
        f"{result['name']:<48} ratio {result['ratio']:.3f}"
        + (f" (target >= {target})" if target is not None else "")
        + verdict
    )
    for key, value in result.items():
        if key not in {"name", "ratio", "target"}:
            print(f"    {key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
