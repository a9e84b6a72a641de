"""Injected REST faults: the next N requests to a route answer 429 (rate limited) or an error status."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .wire import json_response


@dataclass
class Fault:
    route: str  # "METHOD /template", the key the REST middleware counts requests under
    remaining: int
    status: int
    retry_after: float = 0.05
    is_global: bool = False
    code: int = 0
    message: str | None = None

    def response(self) -> web.Response:
        if self.status != 429:
            body = {"message": self.message or f"{self.status}: injected fault", "code": self.code}
            return json_response(body, self.status)
        bucket = hashlib.sha1(self.route.encode()).hexdigest()[:16]
        headers = {
            "Retry-After": f"{self.retry_after:.3f}",
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Scope": "global" if self.is_global else "user",
            # discord.py treats a 429 without Via as a Cloudflare ban and gives up.
            "Via": "1.1 google",
        }
        if self.is_global:
            headers["X-RateLimit-Global"] = "true"
        body: dict[str, Any] = {
            "message": "You are being rate limited.",
            "retry_after": self.retry_after,
            "global": self.is_global,
            "code": 0,
        }
        return json_response(body, 429, headers)


class Faults:
    def __init__(self) -> None:
        self._queued: defaultdict[str, deque[Fault]] = defaultdict(deque)

    def add(self, fault: Fault) -> None:
        self._queued[fault.route].append(fault)

    def take(self, route: str) -> Fault | None:
        queue = self._queued.get(route)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault
