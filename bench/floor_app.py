"""The floor for the receive benchmark: a minimal Starlette app that only verifies the
signature and parses the JSON, under the same uvicorn settings as `serve`.

Whatever `serve` spends beyond this (the replay window, validation, durable storage,
desired state and work creation) is the cost bench/receive.py measures.
Usage: `python bench/floor_app.py --port 8081 --secret S`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from connector.plain.signature import verify


def create_app(secret: str) -> Starlette:
    async def webhook(request: Request) -> Response:
        body = await request.body()
        if not verify(body, request.headers.get("plain-request-signature"), secret):
            return JSONResponse({"status": "invalid signature"}, status_code=401)
        event = orjson.loads(body)
        return JSONResponse({"status": "parsed", "event_id": event.get("id")})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhooks/plain", webhook, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.secret), host=args.host, port=args.port, log_config=None, access_log=False,
        http="auto", loop="auto", lifespan="off",
    )  # fmt: skip


if __name__ == "__main__":
    main()
