"""Ranking, catalog and the serving context: pure Python and numpy, no HTTP, no storage."""
