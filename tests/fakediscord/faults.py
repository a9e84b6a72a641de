"""Injected REST faults: the next N requests to a route answer 429 (rate limited) or an error status."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from aiohttp import web

from .ratelimits import headers, too_many
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
        route_headers = headers(self.route, 5, 0, self.retry_after)
        return too_many(self.retry_after, route_headers, scope="global" if self.is_global else "user")


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
