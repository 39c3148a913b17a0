"""`ttdr serve`: the engine behind an OpenAI-compatible HTTP API, plus infill, rewrite and
score, for agents and UIs on other machines (the `ttdr` and `openai` backends).

    app.py      the routes          limits.py   what is refused, with which status
    schemas.py  the wire format     runner.py   one engine call at a time
    batcher.py  greedy requests that queue up together share one call (--batch)

A front end, like `ttdr.cli` and `ui`: it reaches the engine only through `ttdr.api`.
It runs as its own program (`python -m ttdr.serve`), which `ttdr serve` becomes.
"""
