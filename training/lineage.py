"""What data a training run saw: input files' SHA-256, rows, members, dates and the split.

Recorded with every MLflow run (`lineage.json` artifact, `data.*` params, `lineage.*` tags on
the version) so that `perkrank promote` can rebuild the run's test window from the same files
and tell when two versions were trained on different data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perkrank.config import TrainConfig
from perkrank.features.columns import Columns
from perkrank.features.dataset import Dataset
from perkrank.features.reading import SUFFIXES
from perkrank.features.schema import TABLES

TAG_PREFIX = "lineage."
DATA_SHA256 = "data_sha256"
"""One digest of every input file (name and SHA-256, sorted): equal digests, equal data."""
CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def input_files(data_dir: Path) -> dict[str, str]:
    """File name → SHA-256 of each table file in `data_dir` (the files `load_dataset` reads)."""
    files = {}
    for table in TABLES:
        for suffix in SUFFIXES:
            path = data_dir / f"{table.name}{suffix}"
            if path.is_file():
                files[path.name] = file_sha256(path)
    return dict(sorted(files.items()))


def combined_sha256(files: Mapping[str, str]) -> str:
    """One digest of the files' names and digests."""
    lines = "".join(f"{name}  {digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def data_lineage(
    data_dir: Path,
    dataset: Dataset,
    split: Mapping[str, str],
    config: TrainConfig,
) -> dict[str, Any]:
    """The lineage of a run on `dataset` (read from `data_dir`) with the split dates `split`
    and what rebuilding its evaluation window needs (interactions, sampling, seed)."""
    files = input_files(Path(data_dir))
    purchases = dataset.purchases[Columns.ts]
    return {
        "data_dir": str(Path(data_dir).resolve()),
        "files": files,
        DATA_SHA256: combined_sha256(files),
        "rows": {name: len(getattr(dataset, name)) for name in (t.name for t in TABLES)},
        "members": int(dataset.members[Columns.member_id].nunique()),
        "buyers": int(dataset.purchases[Columns.member_id].nunique()),
        "first_purchase": purchases.min().isoformat(),
        "last_purchase": purchases.max().isoformat(),
        "split": dict(split),
        "evaluation": {
            "interactions": config.interactions.model_dump(mode="json"),
            "max_members": config.evaluation.max_members,
            "k_values": list(config.evaluation.k_values),
            "seed": config.seed,
        },
    }


def lineage_tags(lineage: Mapping[str, Any]) -> dict[str, str]:
    """The lineage as flat `lineage.*` strings (tags of the run and version)."""
    return {
        TAG_PREFIX + "data_dir": lineage["data_dir"],
        TAG_PREFIX + DATA_SHA256: lineage[DATA_SHA256],
        TAG_PREFIX + "rows": json.dumps(lineage["rows"], sort_keys=True),
        TAG_PREFIX + "members": str(lineage["members"]),
        TAG_PREFIX + "date_range": f"{lineage['first_purchase']} .. {lineage['last_purchase']}",
        TAG_PREFIX + "split": json.dumps(lineage["split"], sort_keys=True),
        TAG_PREFIX + "evaluation": json.dumps(lineage["evaluation"], sort_keys=True),
    }


def lineage_params(lineage: Mapping[str, Any]) -> dict[str, Any]:
    """The lineage as nested run params (`data.data_sha256`, `data.split.test_start`, ...)."""
    keys = (DATA_SHA256, "files", "rows", "members", "buyers", "first_purchase", "last_purchase")
    return {"data": {key: lineage[key] for key in (*keys, "split")}}


def read_lineage_tags(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """The lineage `lineage_tags` wrote (what promotion needs), None when the tags lack it."""
    try:
        return {
            "data_dir": tags[TAG_PREFIX + "data_dir"],
            DATA_SHA256: tags[TAG_PREFIX + DATA_SHA256],
            "split": json.loads(tags[TAG_PREFIX + "split"]),
            "evaluation": json.loads(tags[TAG_PREFIX + "evaluation"]),
        }
    except (KeyError, ValueError):
        return None
