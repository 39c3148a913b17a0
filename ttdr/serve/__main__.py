"""`python -m ttdr.serve`: load the model once and serve it until stopped.

`ttdr serve` execs this (as `ttdr ui` execs the app), so signals reach the server itself.
The bearer token comes from TTDR_SERVE_TOKEN only, never from the command line, where any
user of the machine could read it in the process list.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ttdr serve")
    parser.add_argument("--model", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-body-bytes", type=int, default=1_048_576)
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--max-concurrent", type=int, default=8)
    parser.add_argument("--batch", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--max-batch", type=int, default=8)
    args = parser.parse_args(argv)
    if args.max_batch < 1:
        print("Error: --max-batch must be at least 1", file=sys.stderr)
        return 1

    from ttdr.api import load_engine
    from ttdr.config import Settings
    from ttdr.errors import TtdrError
    from ttdr.serve.limits import ServeLimits

    try:
        limits = ServeLimits(
            max_body_bytes=args.max_body_bytes,
            max_tokens=args.max_tokens,
            max_concurrent=args.max_concurrent,
            token=os.environ.get("TTDR_SERVE_TOKEN") or None,
        )
        settings = Settings()
        engine = load_engine(settings, args.model or settings.model)
    except (TtdrError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1

    import uvicorn

    from ttdr.serve.app import create_app

    info = engine.info
    auth = "bearer token required" if limits.token else "no token"
    batching = f"greedy requests batched up to {args.max_batch}" if args.batch else "no batching"
    print(
        f"ttdr serve: {info.name} on {info.device} ({info.decoding}) at "
        f"http://{args.host}:{args.port}/v1 · {auth} · {limits.max_concurrent} concurrent, "
        f"max {limits.max_tokens} tokens, one engine call at a time, {batching}",
        file=sys.stderr,
        flush=True,
    )
    app = create_app(engine, limits, max_batch=args.max_batch if args.batch else None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
