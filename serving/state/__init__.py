"""Serving state: the store ports, their memory and Redis adapters, and the Redis key layout."""
