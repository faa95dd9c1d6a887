"""Text cells are trimmed chunk by chunk and timestamps parsed block by block, as one piece."""

import pandas as pd
import pyarrow as pa

from perkrank.features import parsing


def test_only_chunks_with_whitespace_are_trimmed_and_clean_chunks_are_kept():
    clean = pa.array(["a", "b"])
    spaced = pa.array([" c", "d\u00a0", "e"])
    trimmed = parsing.trimmed_texts(pa.chunked_array([clean, spaced, pa.array([], pa.string())]))
    assert trimmed.to_pylist() == ["a", "b", "c", "d", "e"]
    data = [trimmed.chunk(index).buffers()[2].address for index in (0, 1)]
    assert data[0] == clean.buffers()[2].address  # the same bytes, not a copy
    assert data[1] != spaced.buffers()[2].address


def test_timestamps_parse_the_same_across_blocks(monkeypatch):
    values = pd.Series(
        ["2025-01-01 10:00:00", "2025-01-02T11:30:00+02:00", "", "bad", "2025-03-04 00:00:01"],
        dtype="str",
    )
    whole = parsing.parse_timestamps(values)
    monkeypatch.setattr(parsing, "PARSE_BLOCK", 2)
    blocked = parsing.parse_timestamps(values)
    pd.testing.assert_series_equal(blocked, whole)
    assert blocked.iloc[1] == pd.Timestamp("2025-01-02 09:30:00")
    assert blocked.isna().tolist() == [False, False, True, True, False]
