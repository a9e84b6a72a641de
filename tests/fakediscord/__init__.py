"""A local Discord (REST API v10 + gateway) for end-to-end tests of an unmodified discord.py bot.

    async with FakeDiscord() as server:
        guild = server.add_guild("Lab")
        channel = server.add_text_channel(guild, "music")
        alice = server.add_user("alice"); server.add_member(guild, alice)
        async with server.connect(bot):           # an unmodified discord.py Client/Bot
            interaction = await server.slash(alice, channel, "compose", {"bars": 4})
            response = await interaction.wait_response()

Where it runs
    The server has its own thread and asyncio loop (started by `start()`/`async with`), so a bot whose
    loop is frozen is seen as Discord would see it: the server's clock goes on, deadlines pass,
    heartbeats are missed. Everything a test calls is thread-safe: world building and reads
    (`add_*`, `set_permissions`, `messages`, `message`, `rate_limit`, ...) run on the server's
    thread and return their result; user actions (`react`, `slash`, `press_button`, ...) are
    awaited from the test's loop; `wait_until(predicate)` evaluates the predicate on the server's
    thread after every change and wakes the test's loop. `connect(client)` runs the client on the
    caller's loop. bot/bench/fakeserver.py puts the whole server in a process of its own.

Driving the world (as users and moderators do)
    add_user/add_users/add_guild (with_bot=False: a server the bot is not in)/add_member/add_role/
    add_text_channel/add_forum_channel/add_thread/add_forum_post/add_emoji/set_permissions/
    dm_channel; send_message; react/unreact
    (burst=True: a super reaction) and react_many; press_button/select/slash; delete_message;
    purge (MESSAGE_DELETE_BULK); clear_reactions (MESSAGE_REACTION_REMOVE_ALL, or _EMOJI with an
    emoji); replay_reaction (a stale or duplicate reaction event, state unchanged); replay_last;
    dispatch/dispatch_many (raw events); drop_connections/request_reconnect; rate_limit/fail
    (inject 429s and errors on a route, attachment downloads included: rest.CDN_ROUTE);
    hold_downloads/release_downloads (attachment downloads wait until released, as from a slow
    CDN; `downloads_waiting` counts them); hold/release (a route's requests wait until released; `held`
    counts them); set_route_limit (a per-route bucket); ignore_after = True
    (a deliberate deviation: listings ignore `after`, for tests of paging loops).

Observing
    messages/message (live dicts: "reactions" and "burst_reactions" map emoji -> user ids),
    wait_for_message, interactions and their callbacks/original/followups, missed_deadlines,
    request_counts, request_log (each API request's arrival) and most_in_one_second (the most bound by
    the global limit in any one second), unhandled_requests, events_sent/events_received, sessions,
    rate_limits.limited (every 429 given), gateway.heartbeat_timeouts.

What it enforces, with Discord's documented codes and bodies (developers/topics/opcodes-and-status-codes)
    - Interactions: the initial response within 3 s (`interaction_ack_timeout`) by the server's clock,
      else 404 10062 Unknown interaction, and the miss is recorded in `missed_deadlines`; a second
      initial response is 400 40060; followups and edits via the token for 15 min
      (`interaction_token_lifetime`), then 401 50027 Invalid Webhook Token.
    - Rate limits: X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket on every REST response;
      per-route buckets per top-level resource (channel, guild, webhook), generous by default
      (ratelimits.DEFAULT_ROUTE_LIMIT) or as set (`route_limits=`, set_route_limit,
      ratelimits.DISCORD_OBSERVED_LIMITS); beyond them 429 with `retry_after`, `global: false` and
      X-RateLimit-Scope: user; the global 50 requests/s (`global_rate_limit=`), per bot token (without
      an Authorization header, per IP address), gives 429 with `global: true` and X-RateLimit-Global;
      interaction endpoints are exempt from it.
    - Messages: 2,000 characters, 10 embeds, 10 files, 5 action rows of 5, custom_id 1-100 and
      unique; a file over 10 MiB (or 25 MiB per request) is 413 40005; `nonce` up to 25
      characters; with `enforce_nonce` a nonce repeated by the same author in the same channel
      within `nonce_window` (5 min) returns the earlier message and posts nothing (404 10008 if it
      was deleted since).
    - Permissions: Discord's algorithm with role and member overwrites; 50001/50013; in threads
      (types 11, 12) and forum posts the parent's overwrites apply and posting needs
      SEND_MESSAGES_IN_THREADS; posting in a forum channel (15) itself is 50008; DMs to a user who
      closed them are 50007; embeds are dropped without EMBED_LINKS.
    - Reactions: at most 20 distinct emojis per message (400 30010); an emoji that is neither a
      Unicode emoji nor a custom emoji of the bot's guilds is 400 10014. Super reactions count in
      `count` and `count_details.burst`, `me_burst`; GET .../reactions/{emoji} lists normal
      reactors unless `?type=1`; gateway events carry `burst` and `type` (1 for super).
    - Bulk delete: 2-100 ids, no duplicates (50035), none older than 14 days (50034), guild
      channels only (50003), MANAGE_MESSAGES; unknown ids count and are skipped.
    - Commands: names (lowercase, 1-32), descriptions (1-100; empty for user/message commands),
      25 options and 25 choices (names 1-100, string values up to 100), min/max_length 0/1-6000,
      required options first, unique names, 8,000 characters of names, descriptions and values per
      command (the longest localization counted), 100 chat-input/15 user/15 message commands (30032).
    - Installation contexts: the application supports `installation_types=` (GUILD_INSTALL 0 by
      default; add USER_INSTALL 1 as an operator enabling user install would); a command that
      declares no `integration_types` gets those, and declaring an unsupported one is 50035.
      slash() finds the command as Discord's client would: guild commands where the bot is; global
      ones only in their `contexts` (null: all, less BOT_DM with dm_permission false) and where an
      install applies (GUILD_INSTALL where the bot is a member or in its DM, USER_INSTALL anywhere),
      and sends `context` and `authorizing_integration_owners` accordingly. A guild made with
      with_bot=False sends the bot no events (but INTERACTION_CREATE) and REST there is 50001.
    - Gateway: IDENTIFY with a privileged intent (members, presences, message content) not
      granted by `privileged_intents=` is closed with 4014; a bad token 4004; a shard outside
      [0, count) 4010; over 2,500 guilds a shard 4011. Events of a guild go to shard
      (guild_id >> 22) % count, DMs to shard 0; GET /gateway/bot recommends `shard_count`.
      Intents filter events; without MESSAGE_CONTENT others' guild messages arrive without content.
      A connection that sends no heartbeat for 1.5 heartbeat intervals (`heartbeat_interval=`,
      41.25 s by default) is dropped without a close frame, the session kept: the client RESUMEs
      (op 6) and gets every missed event replayed, then RESUMED.
    - Ids are snowflakes (ms since 2015 << 22), strictly increasing across every server in the process.

Not modelled: archived/locked threads, private-thread membership, thread creation by the bot, emoji
and sticker routes, audit logs, voice.
"""

from .faults import Fault
from .gateway import Intent, Session
from .interactions import HANG_SECONDS, PROCESS_HANG_SECONDS, Interaction
from .ratelimits import DISCORD_OBSERVED_LIMITS
from .rest import ApiError
from .server import FakeDiscord
from .world import ALL_PERMISSIONS, Channel, Guild, Member, Permission, Role, User, emoji_payload

__all__ = [
    "ALL_PERMISSIONS",
    "ApiError",
    "DISCORD_OBSERVED_LIMITS",
    "Channel",
    "FakeDiscord",
    "Fault",
    "Guild",
    "HANG_SECONDS",
    "PROCESS_HANG_SECONDS",
    "Intent",
    "Interaction",
    "Member",
    "Permission",
    "Role",
    "Session",
    "User",
    "emoji_payload",
]
