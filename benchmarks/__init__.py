"""Benchmarks of perkrank, each run from the repository root (results under results/)."""

import json
from pathlib import Path


def write_results(out: Path, name: str, result: dict, markdown: str) -> None:
    """`result` as out/name.json and `markdown` as out/name.md; the markdown is printed too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown)
    print(markdown)
