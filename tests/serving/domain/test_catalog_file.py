"""How large an uploaded offers file is uncompressed, counted without expanding it whole."""

import gzip
import zlib

from perkrank.serving.domain.catalog_file import GUNZIP_CHUNK_BYTES, table_bytes


def gzip_of_zeros(megabytes: int) -> bytes:
    """A gzip of `megabytes` MiB of zeros (about 1 KB per MiB), compressed chunk by chunk."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(megabytes)) + compressor.flush()


def test_a_gzip_bomb_is_counted_only_a_little_past_the_limit():
    bomb = gzip_of_zeros(100)

    counted = table_bytes(bomb, ".csv.gz", 1000)

    assert len(bomb) < 200_000
    assert 1000 < counted <= 1000 + GUNZIP_CHUNK_BYTES


def test_every_member_of_a_gzip_counts_and_plain_files_count_as_they_are():
    two_members = gzip.compress(b"a" * 3000) + gzip.compress(b"b" * 4000)

    assert table_bytes(two_members, ".csv.gz", 10_000) == 7000
    assert table_bytes(b"offer_id\n" * 10, ".csv", 5) == 90


def test_a_broken_gzip_counts_what_could_be_read_and_is_left_to_the_parser():
    broken = gzip.compress(b"c" * 5000)[:-12]

    assert table_bytes(broken, ".csv.gz", 10_000) <= 5000
    assert table_bytes(b"not parquet", ".parquet", 10) == 0
