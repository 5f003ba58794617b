"""EDGE: the admin API emulator — a Starlette app (app.py) over the SQLite live store, run by uvicorn (server.py).

It plays the scheduling platform for rehearsals and tests: the contract is schemas/admin-api.openapi.yaml,
the storage is reconciler.connectors.embedded.LiveStore, so it serves what the `embedded` connector wrote.
Nothing here is imported by `reconciler --help`: the `emulator` command imports it when it runs.
"""
