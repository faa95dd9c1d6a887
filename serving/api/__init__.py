"""The HTTP API (FastAPI): the app factory, its routers, schemas, auth and observability."""
