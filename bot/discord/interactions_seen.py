"""Each interaction (a slash command, a button press, a menu pick) handled once: the gateway can deliver the same
INTERACTION_CREATE again (a RESUME's replay, a duplicate dispatch), and Discord accepts one initial response per
interaction, so a second handling could only fail ("40060 Interaction has already been acknowledged") after
redoing the work. An interaction's id is unique (a snowflake), so a repeated id is a duplicate, never a new press."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

log = logging.getLogger("crowdtune.bot")

# How many interaction ids are remembered: a duplicate is the gateway replaying what it just sent (a RESUME replays
# the events since the last acknowledged sequence), far fewer than this.
REMEMBERED = 4096


def handle_each_interaction_once(parsers: dict[str, Callable[[dict], None]]) -> None:
    """Wrap discord.py's INTERACTION_CREATE parser (`parsers`: its ConnectionState's, by event name) so that an
    interaction whose id was already handled is dropped with one debug line, before any handler sees it."""
    parse = parsers["INTERACTION_CREATE"]
    seen: OrderedDict[str, None] = OrderedDict()

    def parse_once(data: dict) -> None:
        key = str(data.get("id"))
        if key in seen:
            log.debug("interaction %s delivered again by the gateway: handled once already, ignored", key)
            return
        seen[key] = None
        if len(seen) > REMEMBERED:
            seen.popitem(last=False)
        parse(data)

    parsers["INTERACTION_CREATE"] = parse_once
