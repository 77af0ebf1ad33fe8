"""The README's performance table, rewritten after every full `make bench`."""

from __future__ import annotations

import json
from pathlib import Path

from bench.results import Result, markdown

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


def replace_block(text: str, block: str) -> str:
    """`text` with what stands between the markers replaced by `block`."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the README has no {START} ... {END} block")
    return f"{head}{START}\n{block}\n{END}{tail}"


def update(results: list[Result], latest: Path, readme: Path = README) -> None:
    document = json.loads(latest.read_text())
    block = markdown(results, date=document["date"], machine_name=document["machine"])
    readme.write_text(replace_block(readme.read_text(), block))
