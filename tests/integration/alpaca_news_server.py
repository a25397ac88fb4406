"""A tiny local server speaking Alpaca's news API (`GET /v1beta1/news`) for tests: the
same query parameters (symbols, start, end, sort, limit, page_token), the same JSON
(`{"news": [...], "next_page_token": ...}`), key headers checked, and pages of at most
`limit` articles so the SDK's pagination is exercised. Run on 127.0.0.1 by uvicorn in a
thread (`serving`)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.integration.local_server import serve_app


def news_app(articles: list[dict[str, Any]], key: str, secret: str) -> Starlette:
    """Serve `articles` (Alpaca's article objects) and record each request's params."""
    requests_seen: list[dict[str, str]] = []

    async def news(request: Request) -> JSONResponse:
        if (
            request.headers.get("APCA-API-KEY-ID") != key
            or request.headers.get("APCA-API-SECRET-KEY") != secret
        ):
            return JSONResponse({"message": "forbidden."}, status_code=403)
        params = dict(request.query_params)
        requests_seen.append(params)
        wanted = {s.strip().upper() for s in params.get("symbols", "").split(",") if s.strip()}
        start = pd.Timestamp(params["start"]) if "start" in params else None
        end = pd.Timestamp(params["end"]) if "end" in params else None
        chosen = []
        for article in articles:
            created = pd.Timestamp(article["created_at"])
            if wanted and not wanted & set(article["symbols"]):
                continue
            if (start is not None and created < start) or (end is not None and created > end):
                continue
            chosen.append(article)
        chosen.sort(key=lambda a: a["created_at"], reverse=params.get("sort") != "asc")
        limit = int(params.get("limit") or 10)
        offset = int(params.get("page_token") or 0)
        page = chosen[offset : offset + limit]
        following = offset + limit if offset + limit < len(chosen) else None
        return JSONResponse(
            {"news": page, "next_page_token": None if following is None else str(following)}
        )

    app = Starlette(routes=[Route("/v1beta1/news", news)])
    app.state.requests_seen = requests_seen
    return app


serving = serve_app
