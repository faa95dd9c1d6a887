"""Named numpy arrays on disk as one `.npy` file each, memory-mapped when read, with checksums.

`save_arrays` writes `<name>.npy` per array (atomically: a temporary file renamed into place)
and returns each file's sha256; `load_arrays` checks each file's digest and memory-maps it
(`np.load(mmap_mode="r")`), so every byte is read from disk once: the checksum pulls the pages
into the page cache the mapped array then reads, with no second copy on the heap. Reading and
hashing release the GIL, so a loading thread leaves the event loop its core. numpy only, no
pickles.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

SUFFIX = ".npy"


def save_arrays(directory: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Write each array as `directory/<name>.npy`; the sha256 of each file, by name."""
    directory.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, values in arrays.items():
        path = directory / f"{name}{SUFFIX}"
        partial = path.with_suffix(".npy.partial")
        with open(partial, "wb") as file:
            np.save(file, np.asarray(values), allow_pickle=False)
        os.replace(partial, path)
        digests[name] = file_sha256(path)
    return digests


def load_arrays(directory: Path, digests: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The arrays `digests` names, memory-mapped read-only; ValueError naming the file whose
    bytes do not match its digest."""
    arrays = {}
    for name, expected in digests.items():
        path = directory / f"{name}{SUFFIX}"
        if file_sha256(path) != expected:
            raise ValueError(f"{path}: checksum mismatch (the file changed after it was saved)")
        arrays[name] = _mapped(path)
    return arrays


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (read in large chunks; the GIL is released while reading
    and hashing each)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _mapped(path: Path) -> np.ndarray:
    """The array of a `.npy` file, memory-mapped; an empty one is read (it cannot be mapped)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        return np.load(path, allow_pickle=False)
