"""Reaching Discord's REST API at the bot's start: tried again while the network comes up, then one line in our
words (bot.errors' exit codes DISCORD_UNREACHABLE, BAD_URL)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket

import aiohttp
import discord
import yarl

from bot.discord.pace import Pace, paced_requests
from bot.errors import ExitCode, StartupError
from bot.progress import plural

log = logging.getLogger("crowdtune.bot")


async def reach_discord(retry_seconds: float, pace: Pace) -> None:
    """Wait until Discord's REST API (discord.http.Route.BASE, see point_at) answers GET /gateway, which
    needs no token: tried again after 1, 2, 4 ... 30 s while `retry_seconds` last, as the network may
    come up after the bot (a container starting, a laptop waking). StartupError DISCORD_UNREACHABLE
    then; BAD_URL when something answers that is not Discord's API (HTTP 4xx). Each try takes a turn of `pace`, the
    process's (bot/discord/pace.py): Discord counts them against its global limit as it does the bot's others."""
    from storage.postgres import public_text, public_url  # the one masking of a URL's password (README)

    url = discord.http.Route.BASE.rstrip("/") + "/gateway"
    where = yarl.URL(url).host
    loop = asyncio.get_running_loop()
    started = loop.time()
    give_up, pause, tries = started + retry_seconds, 1.0, 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), trace_configs=[paced_requests(pace)]) as session:
        while True:
            tries += 1
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
                    if response.status < 500 and response.status != 429:
                        raise StartupError(
                            f"{public_url(url)} answered HTTP {response.status}: CROWDTUNE_API_BASE must be a Discord API base such as "
                            "https://discord.com/api/v10",
                            ExitCode.BAD_URL,
                        )
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as problem:
                reason = public_text(_why_unreachable(problem), url)  # aiohttp's own words may hold the URL
            if loop.time() + pause >= give_up:
                # The time the tries took, and why no more: the next would not come before what the setting allows
                # ran out (a newcomer read "2 tries in 1 s (CROWDTUNE_CONNECT_RETRY_SECONDS: 3)" as giving up early).
                # Rounded up, so that the line's own sum holds ("1 try in 0 s; the next, 1 s later, would come after
                # the 1 s ... allows" did not).
                took = math.ceil((loop.time() - started) * 10) / 10
                raise StartupError(
                    f"cannot reach Discord at {where} ({reason}), {plural(tries, 'try', 'tries')} in {took:g} s; the next would "
                    f"come {pause:g} s later, when the {retry_seconds:g} s CROWDTUNE_CONNECT_RETRY_SECONDS allows would have run "
                    "out: check the network and CROWDTUNE_API_BASE",
                    ExitCode.DISCORD_UNREACHABLE,
                )
            log.warning("cannot reach Discord at %s (%s); trying again in %g s", where, reason, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)


def _why_unreachable(problem: BaseException) -> str:
    """Why Discord's API could not be reached, in our words: aiohttp's ("Cannot connect to host 127.0.0.1:9
    ssl:default [Connect call failed ...]") name TLS even for an http:// URL."""
    if isinstance(problem, asyncio.TimeoutError):
        return "no answer within 10 s"
    if not isinstance(problem, aiohttp.ClientConnectorError):
        return str(problem) or type(problem).__name__
    if isinstance(problem, aiohttp.ClientConnectorCertificateError):
        return f"its TLS certificate cannot be trusted: {problem.certificate_error}"
    cause = problem.os_error
    if isinstance(cause, socket.gaierror):
        return f"the host's name cannot be looked up: {cause.strerror or cause}"
    if isinstance(cause, ConnectionRefusedError):
        return f"nothing answers on port {problem.port}: connection refused"
    return os.strerror(cause.errno) if cause.errno and cause.errno > 0 else str(cause) or type(cause).__name__
