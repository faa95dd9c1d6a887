"""The offer API: eligibility → scoring → opt-outs → frequency caps → ranked offers."""
