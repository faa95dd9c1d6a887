"""The default configuration files, shipped with the package (`perkrank.config.CONFIG_DIR`)."""
