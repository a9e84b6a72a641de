"""JSON on the wire, shaped the way discord.py reads it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body as JSON only if Content-Type is exactly "application/json"
    # (aiohttp's content_type= would append "; charset=utf-8").
    return web.Response(
        status=status, body=dumps(data).encode(), headers={**(headers or {}), "Content-Type": "application/json"}
    )
