"""The offer API: eligibility → scoring → opt-outs → frequency caps → ranked offers.

Layers, each importing only those after it: `api` (FastAPI: routers, schemas, keys, metrics)
→ `bootstrap` (the one composition root) and `live` (follows live settings) → `state` (store
ports, memory and Redis adapters) → `domain` (catalog, ranking, the serving context; it names
the store ports in type hints only).
"""
