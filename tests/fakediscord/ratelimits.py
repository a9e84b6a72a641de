"""Discord's REST rate limits: per-route buckets with X-RateLimit-* headers on every response, and the
global limit of 50 requests a second, the bot token's (or, for a request without one, its IP address's;
interaction endpoints exempt). Source: Discord's "Rate Limits" page
(developers/topics/rate-limits in discord/discord-api-docs).

A bucket is one route template (method + path) and its top-level resource (channel_id, guild_id, or
webhook_id + webhook_token): its window opens at its first request and lets `limit` requests through in
`per` seconds; one more is a 429 with `retry_after` until the window ends.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

from aiohttp import web

from .wire import json_response

# Discord does not publish per-route limits ("should not be hard coded"). The fake's default is generous
# so the suite stays fast; DISCORD_OBSERVED_LIMITS are the ones commonly seen on Discord, for tests that
# want them (FakeDiscord(route_limits=DISCORD_OBSERVED_LIMITS)).
DEFAULT_ROUTE_LIMIT = (50, 1.0)
DISCORD_OBSERVED_LIMITS: dict[str, tuple[int, float]] = {
    "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me": (1, 0.25),
    "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me": (1, 0.25),
    "POST /channels/{channel_id}/messages": (5, 5.0),
}
GLOBAL_LIMIT = 50  # requests per second per bot, documented
TOP_LEVEL = ("channel_id", "guild_id", "webhook_id", "webhook_token")


def is_interaction_route(route: str) -> bool:
    """Interaction callbacks and the interaction webhook routes are not bound by the global limit."""
    template = route.partition(" ")[2]
    return template.startswith(("/interactions/", "/webhooks/{webhook_id}/{webhook_token}"))


def most_in_one_second(times: list[float]) -> int:
    """The most of `times` (seconds) within any window of one second: the count a limit per second sees at its worst."""
    times = sorted(times)
    most = first = 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def bucket_hash(route: str) -> str:
    return hashlib.sha1(route.encode()).hexdigest()[:16]


def headers(route: str, limit: int, remaining: int, reset_after: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": bucket_hash(route),
        # discord.py treats a 429 without Via as a Cloudflare ban and gives up; Discord's responses have it.
        "Via": "1.1 google",
    }


def too_many(
    retry_after: float, route_headers: dict[str, str], *, scope: str, code: int | None = None, message: str | None = None
) -> web.Response:
    """Discord's 429: Retry-After (whole seconds, rounded up), the scope, the JSON body with retry_after
    (and an error code for limits that have one, e.g. 30034)."""
    is_global = scope == "global"
    extra = {"Retry-After": str(max(1, math.ceil(retry_after))), "X-RateLimit-Scope": scope}
    if is_global:
        extra["X-RateLimit-Global"] = "true"
        route_headers = {"Via": route_headers["Via"]}
    body: dict[str, Any] = {
        "message": message or "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
    }
    if code is not None:
        body["code"] = code
    return json_response(body, 429, {**route_headers, **extra})


@dataclass
class _Window:
    opened: float
    used: int = 0


class RateLimits:
    """Counts requests; `admit` says whether one goes through and which headers it carries."""

    def __init__(self, route_limits: Mapping[str, tuple[int, float]] | None = None, *, global_limit: int | None = GLOBAL_LIMIT) -> None:
        self.route_limits: dict[str, tuple[int, float]] = dict(route_limits or {})
        self.global_limit = global_limit
        self.limited: list[tuple[str, str]] = []  # (route, scope) of every 429 given, for tests
        self._windows: dict[tuple[str, tuple[str, ...]], _Window] = {}
        # Times of the last second's requests under the global limit, by whom Discord counts them against: the bot
        # token (the Authorization header), or without one the caller's IP address ("Rate Limits": global rate limit).
        self._recent: dict[str, deque[float]] = {}

    def global_used(self) -> int:
        """Requests within the last second that count against a global limit, all callers': 0 once a burst is over."""
        now = time.monotonic()
        return len([at for recent in self._recent.values() for at in recent if now - at < 1.0])

    def limit_for(self, route: str) -> tuple[int, float]:
        return self.route_limits.get(route, DEFAULT_ROUTE_LIMIT)

    def admit(self, route: str, match_info: Mapping[str, str], caller: str) -> tuple[dict[str, str], web.Response | None]:
        """(headers for the response, or a 429 to send instead); `caller` is whom the global limit counts it against."""
        now = time.monotonic()
        limit, per = self.limit_for(route)
        key = (route, tuple(match_info.get(name, "") for name in TOP_LEVEL))
        window = self._windows.get(key)
        if window is None or now - window.opened >= per:
            window = self._windows[key] = _Window(now)
        reset_after = max(0.0, window.opened + per - now)
        recent = self._recent.setdefault(caller, deque())
        if self.global_limit is not None and not is_interaction_route(route):
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= self.global_limit:
                self.limited.append((route, "global"))
                route_headers = headers(route, limit, limit - window.used, reset_after)
                return route_headers, too_many(1.0 - (now - recent[0]), route_headers, scope="global")
        if window.used >= limit:
            self.limited.append((route, "user"))
            route_headers = headers(route, limit, 0, reset_after)
            return route_headers, too_many(reset_after, route_headers, scope="user")
        window.used += 1
        if self.global_limit is not None and not is_interaction_route(route):
            recent.append(now)
        return headers(route, limit, limit - window.used, reset_after), None
