"""Raw input files → validated tables → model inputs (matrices and feature lists)."""
