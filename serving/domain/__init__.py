"""Ranking, catalog, selection rules and the serving context: pure Python and numpy, no HTTP,
no storage."""
