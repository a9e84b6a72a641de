"""Every vote counts once, only where it was cast, and only while it stands (issue 11).

Each test is one numbered case of the issue, played through the local Discord server as a hostile
user or a moderator would, and written to fail on the code before its fix (docs/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import re

import pytest

from core.crowd import Ballot, ab_rewards
from core.engine import chance_text
from test_discord_bot import KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, is_round, renderer, round_recorded, running, uid  # noqa: F401

pytestmark = pytest.mark.asyncio


def buttons_of(post: dict) -> dict[str, str]:
    """The vote buttons of a round's post: value ("1".."10", "a", "x"...) -> custom id."""
    return {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in post["components"] for c in row["components"]}


async def first_round(env, **options) -> dict:
    """/compose in the server's channel (by the moderator); the first round's post."""
    await compose(env, **options)
    return await env.server.wait_for_message(env.channel, is_round(1))


async def confirm(server, user, interaction, label: str) -> dict:
    """Answer an ephemeral confirmation (the prompt `interaction` answered) by pressing `label`."""
    prompt = (await interaction.wait_response())["data"]
    if interaction.deferred:  # asked by editing the original response (/forget-me makes its copy first)
        prompt = await interaction.wait_original()
    button = next(c["custom_id"] for row in prompt["components"] for c in row["components"] if c["label"] == label)
    return await (await server.press_button(user, interaction.original["id"], button)).wait_response()


async def forget_me(env, user, channel) -> dict:
    """/forget-me, confirmed; returns the confirmation's final text."""
    asked = await env.server.slash(user, channel, "forget-me")
    await confirm(env.server, user, asked, "Delete my data")
    await env.server.wait_until(lambda: "Delete" not in str(env.server.message(asked.original["id"]).get("components")), what="the confirmation")
    return env.server.message(asked.original["id"])


# -- 1. ids are never reused, and no cache or task follows a deleted one --------------------------


async def test_1_a_forgotten_rounds_ids_and_caches_never_reach_another_round(env):
    server = env.server
    dm = server.dm_channel(env.alice)
    async with running(env):
        await (await server.slash(env.alice, dm, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, user=env.alice, channel=dm, rounds=3, round_minutes=600)
        old = await server.wait_for_message(dm, is_round(1))
        old_buttons, old_rows = buttons_of(old), old["components"]  # /forget-me edits them off the post: a stale client may still press one
        counted = await (await server.press_button(env.alice, old["id"], old_buttons["7"])).wait_response()
        assert "Your rating: 7" in counted["data"]["content"]  # the DM round's message is now cached
        await forget_me(env, env.alice, dm)
        assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0  # the personal agent and its rounds are gone

        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=3)
        # The deleted session's sleeping task does not hold up the next session.
        new = await server.wait_for_message(env.channel, is_round(1))
        [(session_id,)] = db_rows(env, "SELECT id FROM sessions")
        [(round_id,)] = db_rows(env, "SELECT id FROM rounds")
        assert (session_id, round_id) == (2, 2)  # never the deleted ones' ids

        # The old DM button (naming round 1) and its cached message reach no round.
        # The button is gone from the post (/forget-me ended it), so only a stale or forged client still sends it.
        from fakediscord.interactions import MESSAGE_COMPONENT

        press = {"custom_id": old_buttons["7"], "component_type": 2}
        refused = await (await forged(server, env.alice, dm, MESSAGE_COMPONENT, press, message={**server.message(old["id"]), "components": old_rows})).wait_response()
        assert "no longer open" in refused["data"]["content"]
        pressed = await (await server.press_button(env.bob, new["id"], buttons_of(new)["4"])).wait_response()
        assert "Your rating: 4" in pressed["data"]["content"]
    assert db_rows(env, "SELECT voter, rating FROM votes") == [(uid(env.bob), 4.0)]


async def test_1_upgrading_a_schema_1_database_keeps_every_row_and_stops_reusing_ids(tmp_path):
    import sqlite3

    from storage import open_store
    from storage.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(MIGRATIONS[1])
        raw.execute("INSERT INTO scopes (id, kind, created_at) VALUES ('guild:1', 'guild', 0)")
        raw.execute("INSERT INTO sessions (id, scope_id, spec, status, track, created_at) VALUES (7, 'guild:1', '{}', 'active', '{}', 0)")
        raw.execute("INSERT INTO rounds (id, session_id, idx, mode, plan, opened_at, status) VALUES (9, 7, 0, 'rating', '{}', 0, 'open')")
        raw.execute("INSERT INTO votes (round_id, voter, rating, cast_at) VALUES (9, 'user:2', 5, 0)")
        raw.execute("PRAGMA user_version = 1")
    store = await open_store(path)
    try:
        assert (await store.round(9)).session_id == 7 and len(await store.ballots(9)) == 1
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("DELETE FROM sessions WHERE id = 7")  # cascades to its round and votes
        assert raw.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 0
        raw.execute("INSERT INTO sessions (scope_id, spec, status, track, created_at) VALUES ('guild:1', '{}', 'active', '{}', 0)")
        assert raw.execute("SELECT id FROM sessions").fetchall() == [(8,)]


# -- 5. the quorum counts standing votes only ---------------------------------------------------


async def test_5_a_stale_reaction_event_does_not_bring_a_round_to_its_quorum(env):
    server = env.server
    async with running(env):
        post = await first_round(env, rounds=3, quorum=3)
        await server.react(env.alice, post["id"], KEYCAPS[6])
        await server.react(env.carol, post["id"], KEYCAPS[2])
        await server.react(env.bob, post["id"], KEYCAPS[4])
        await server.unreact(env.bob, post["id"], KEYCAPS[4])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM vote_events")[0][0] == 4, "the votes and bob's withdrawal")
        # The gateway delivers bob's add again after its removal (a replay after a RESUME).
        await server.replay_reaction(env.bob, post["id"], KEYCAPS[4])
        # The count reached 3 with the stale add, so the reactions were read again: bob's vote is gone.
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM vote_events WHERE voter = ?", (uid(env.bob),))[0][0] == 4,
                         "the stale add undone by the re-read")
        assert db_rows(env, "SELECT status FROM rounds") == [("open",)]
        assert await ballots(env) == {uid(env.alice): 7.0, uid(env.carol): 3.0}
        await server.react(env.mod, post["id"], KEYCAPS[9])  # a third standing vote does close it
        summary = await server.wait_for_message(env.channel, lambda m: "closed" in m["content"])
        assert "3 voted" in summary["content"]


# -- 11. a loop over a remote listing ends on its own ----------------------------------------------


async def test_11_the_close_ends_against_a_server_that_ignores_after_in_reaction_listings(env):
    server = env.server
    crowd = server.add_users(130, guild=env.guild, prefix="listener")
    async with running(env):
        post = await first_round(env, rounds=3)
        await server.react_many([(user, post["id"], KEYCAPS[6], True) for user in crowd])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == len(crowd), "the crowd's votes")
        server.ignore_after = True  # every page of reactors starts from the beginning again
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: "closed" in m["content"])
    # The listing never ended, so nobody was taken for gone: every vote counted.
    assert f"{len(crowd)} voted" in summary["content"]
    assert len(await ballots(env)) == len(crowd)


# -- 6. super reactions count like normal ones everywhere ------------------------------------------


async def test_6_super_reactions_count_at_the_close_and_after_a_restart(env):
    server = env.server
    async with running(env):
        post = await first_round(env, rounds=3)
        await server.wait_until(lambda: len(server.message(post["id"])["reactions"]) == 10, what="the vote reactions")
        await server.react(env.alice, post["id"], KEYCAPS[6], burst=True)
        await server.react(env.bob, post["id"], KEYCAPS[3])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "both votes")
    await server.react(env.carol, post["id"], KEYCAPS[8], burst=True)  # while the bot is down
    async with running(env):
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 3, "the super reaction made while down")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: "closed" in m["content"])
    assert "3 voted" in summary["content"]
    assert await ballots(env) == {uid(env.alice): 7.0, uid(env.bob): 4.0, uid(env.carol): 9.0}


# -- 4. cleared reactions withdraw exactly their votes, at once -----------------------------------


async def test_4_a_moderator_clearing_reactions_withdraws_those_votes_at_once(env):
    server = env.server
    async with running(env):
        post = await first_round(env, rounds=3, quorum=3)
        await server.react(env.alice, post["id"], KEYCAPS[6])
        await server.react(env.bob, post["id"], KEYCAPS[3])
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM votes WHERE retracted = 0")) == 2, "two votes")
        await server.clear_reactions(post["id"], KEYCAPS[3])  # one emoji: bob's 4 goes, alice's 7 stays
        await eventually(lambda: db_rows(env, "SELECT retracted FROM votes WHERE voter = ?", (uid(env.bob),)) == [(1,)], "bob's 4 withdrawn")
        assert await ballots(env) == {uid(env.alice): 7.0}
        await server.react(env.bob, post["id"], KEYCAPS[4])
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM votes WHERE retracted = 0")) == 2, "bob votes again")
        await server.clear_reactions(post["id"])  # every reaction
        await eventually(lambda: not db_rows(env, "SELECT 1 FROM votes WHERE retracted = 0"), "every vote withdrawn")
        status = await (await server.slash(env.carol, env.channel, "status")).wait_response()
        assert "0 voted so far" in status["data"]["content"]
        await server.react(env.carol, post["id"], KEYCAPS[1])  # one new vote is one vote: no quorum of 3
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM votes WHERE retracted = 0")) == 1, "carol's vote")
        await asyncio.sleep(0.3)
        assert db_rows(env, "SELECT status FROM rounds") == [("open",)]
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: "closed" in m["content"])
    assert "1 voted" in summary["content"]
    assert await ballots(env) == {uid(env.carol): 2.0}


async def test_2_forget_me_on_a_buttons_server_speaks_of_buttons_not_reactions(env):
    """Found by a trial: on a server voting with buttons, /forget-me's outcome said "a reaction you leave on an open round
    no longer counts": words for the server's vote style."""
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        post = await first_round(env, rounds=3)
        button = {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in post["components"] for c in row["components"]}
        await (await server.press_button(env.alice, post["id"], button["7"])).wait_response()
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "her vote")
        forgotten = (await forget_me(env, env.alice, env.channel))["content"]
        await (await server.press_button(env.alice, post["id"], button["3"])).wait_response()  # a new vote, which counts
        await eventually(lambda: db_rows(env, "SELECT rating FROM votes") == [(3.0,)], "her new vote")
    assert "reaction" not in forgotten, forgotten
    assert forgotten.endswith("are kept; to vote again on a round open now, press its buttons again."), forgotten


# -- 3. deleting a round's message cancels it, in every form and every vote style -----------------


@pytest.mark.parametrize("style", ["buttons", "reactions"])
async def test_3_a_purged_or_while_down_deleted_round_message_cancels_the_round(env, style):
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": style})).wait_response()
        first = await first_round(env, rounds=5, round_minutes=600)
        await server.purge([first["id"]])  # MESSAGE_DELETE_BULK
        await server.wait_for_message(env.channel, lambda m: "Round 1 cancelled" in m["content"])
        second = await server.wait_for_message(env.channel, is_round(2))
        await eventually(lambda: str(second["id"]) in db_rows(env, "SELECT message_ids FROM rounds WHERE idx = 1")[0][0], "the post recorded")
    await server.delete_message(second["id"])  # while the bot is down
    async with running(env):
        await server.wait_for_message(env.channel, lambda m: "Round 2 cancelled" in m["content"])
        await server.wait_for_message(env.channel, is_round(3))
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "cancelled"), (1, "cancelled"), (2, "open")]
    assert db_rows(env, "SELECT COUNT(*) FROM qvalues")[0][0] == 0


# -- 2. /forget-me keeps moderation records, and a forgotten vote is not read back ------------------


async def test_2_forget_me_keeps_a_strike_and_a_forgotten_reaction_is_not_read_back(env):
    server = env.server
    async with running(env):
        post = await first_round(env, rounds=3)
        await server.react(env.bob, post["id"], KEYCAPS[0])
        await server.react(env.alice, post["id"], KEYCAPS[7])
        await server.react(env.carol, post["id"], KEYCAPS[4])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 3, "three votes")
        await (await server.slash(env.mod, env.channel, "strike", {"user": env.bob})).wait_original()  # deferred, then answered

        done = await forget_me(env, env.bob, env.channel)  # the struck user tries to wipe the strike
        assert "Moderation records" in done["content"] and "kept" in done["content"]
        forgotten = await forget_me(env, env.alice, env.channel)  # alice's reaction stays on the open round
        assert "no longer counts" in forgotten["content"]
        assert db_rows(env, "SELECT voter FROM strikes") == [(uid(env.bob),)]
        await server.unreact(env.bob, post["id"], KEYCAPS[0])
        await server.react(env.bob, post["id"], KEYCAPS[1])  # still struck: not counted
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: "closed" in m["content"])
        assert "1 voted" in summary["content"]
        assert await ballots(env) == {uid(env.carol): 5.0}  # alice's reaction was not read back into a vote

        # A moderator lifts the strike, in the audit log; bob's next vote counts.
        second = await server.wait_for_message(env.channel, is_round(2))
        refused = await (await server.slash(env.bob, env.channel, "unstrike", {"user": env.bob})).wait_response()
        assert "moderators" in refused["data"]["content"]
        lifted = await (await server.slash(env.mod, env.channel, "unstrike", {"user": env.bob})).wait_response()
        assert "Lifted the strike" in lifted["data"]["content"]
        await server.react(env.bob, second["id"], KEYCAPS[5])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes v JOIN rounds r ON r.id = v.round_id WHERE r.idx = 1")[0][0] == 1, "bob's vote")
    assert db_rows(env, "SELECT COUNT(*) FROM strikes")[0][0] == 0
    assert db_rows(env, "SELECT actor, detail FROM audit WHERE action = 'unstrike'") == [(uid(env.mod), f'{{"voter": "{uid(env.bob)}"}}')]
    assert await ballots(env, 1) == {uid(env.bob): 6.0}
    assert db_rows(env, "SELECT COUNT(*) FROM withheld_reactions")[0][0] == 0  # gone with the close


# -- 10. payload checks at the edge ---------------------------------------------------------------


async def forged(server, user, where, kind: int, data: dict, message: dict | None = None, **changes):
    """An interaction as a modified client could send it: built for `user` in the channel `where`, then
    with the INTERACTION_CREATE payload's fields replaced by `changes` (e.g. another channel or server)."""
    import secrets

    from fakediscord.interactions import Interaction

    def send() -> Interaction:
        interaction = Interaction(server, id=server.world.new_id(), token=secrets.token_urlsafe(48), type=kind, user=user,
                                  channel=where, data=data, message=message)
        server.interactions[interaction.id] = interaction
        server.interactions_by_token[interaction.token] = interaction
        interaction.created_at = asyncio.get_running_loop().time()  # the server's clock, for its 3 s deadline
        server.gateway.dispatch("INTERACTION_CREATE", {**interaction.payload(server.world), **changes})
        return interaction

    interaction = server._call_on_server(send)
    await server.flush()
    return interaction


def command_data(server, name: str, options: list | None = None) -> dict:
    command = next(c for scope in server.commands.values() for c in scope if c["name"] == name)
    return {"id": command["id"], "name": name, "type": 1, "options": options or []}


async def test_10_forged_channels_servers_and_ids_reach_nothing(env):
    from fakediscord.interactions import APPLICATION_COMMAND, MESSAGE_COMPONENT

    server = env.server
    other = server.add_guild("Other Place")
    other_channel = server.add_text_channel(other, "music")
    owner = server.world.users[other.owner_id]
    server.add_member(env.guild, owner)  # a plain member here, the owner there
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        post = await first_round(env, rounds=3)
        here = {"channel_id": str(env.channel.id), "channel": env.channel.payload()}

        # /stop in this channel, claiming to come from the server where the caller is the owner.
        stop = await forged(server, owner, other_channel, APPLICATION_COMMAND, command_data(server, "stop"), **here)
        assert "Sorry" in (await stop.wait_response())["data"]["content"]
        assert db_rows(env, "SELECT status FROM sessions") == [("active",)]

        # /compose from alice's DM, naming bob's DM channel.
        alice_dm, bob_dm = server.dm_channel(env.alice), server.dm_channel(env.bob)
        compose_there = await forged(server, env.alice, alice_dm, APPLICATION_COMMAND, command_data(server, "compose"),
                                     channel_id=str(bob_dm.id), channel=bob_dm.payload())
        assert "Sorry" in (await compose_there.wait_response())["data"]["content"]
        assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 1 and server.messages(bob_dm) == []

        # A button id too large for SQLite, pressed with a good vote: refused for that press only.
        # (The forged payload's message carries that button too: discord.py ignores an id its message lacks.)
        huge = {"custom_id": f"ct:{10**20}:7", "component_type": 2}
        button = {"type": 2, "style": 1, "label": "7", "custom_id": huge["custom_id"]}
        message = {**server.message(post["id"]), "components": [{"type": 1, "components": [button]}]}
        good = buttons_of(post)["6"]
        presses = await asyncio.gather(
            forged(server, env.alice, env.channel, MESSAGE_COMPONENT, huge, message=message),
            server.press_button(env.bob, post["id"], good),
        )
        refused, counted = [(await p.wait_response())["data"]["content"] for p in presses]
        assert "no longer open" in refused and "Your rating: 6" in counted
    assert await ballots(env) == {uid(env.bob): 6.0}


# -- 8. a close's summary is recorded with the close and posted once after a crash ----------------


async def test_8_a_summary_cut_off_by_a_crash_right_after_the_close_is_posted_once_at_restart(env):
    server = env.server
    async with running(env):
        post = await first_round(env, rounds=3, round_minutes=600)
        await server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "alice's vote")
        # The next message the bot posts (the summary) is held by a long rate limit; the bot dies meanwhile.
        route = "POST /channels/{channel_id}/messages"
        posts = server.request_counts[route]
        server.rate_limit(route, retry_after=60)
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM rounds WHERE idx = 0") == [("closed",)], "the close committed")
        await server.wait_until(lambda: server.request_counts[route] > posts, what="the summary held")
    assert not [m for m in server.messages(env.channel) if "Round 1 closed" in m["content"]]
    async with running(env):
        await server.wait_for_message(env.channel, is_round(2))
    async with running(env):  # and a second restart does not post it again
        await server.react(env.bob, server.messages(env.channel)[-1]["id"], KEYCAPS[2])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "the bot running")
    summaries = [m["content"] for m in server.messages(env.channel) if "Round 1 closed" in m["content"]]
    assert len(summaries) == 1 and "1 voted" in summaries[0]
    contents = [m["content"] for m in server.messages(env.channel)]
    assert contents.index(summaries[0]) < next(i for i, c in enumerate(contents) if c.startswith("**Round 2"))  # in order


# -- 9. one bot per database; a database removed under the bot stops voting, said and logged ------


async def test_9_a_database_file_removed_under_the_running_bot_stops_voting_clearly(env, caplog):
    import logging
    import os

    if str(env.db).startswith("postgresql://"):
        pytest.skip("a file removed under the bot: SQLite only (a PostgreSQL database is not a file)")

    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        post = await first_round(env, rounds=3)
        first = await (await server.press_button(env.bob, post["id"], buttons_of(post)["6"])).wait_response()
        assert "Your rating: 6" in first["data"]["content"]
        with caplog.at_level(logging.ERROR):
            os.remove(env.db)  # an operator's mistake, or a deploy replacing the file
            refused = await (await server.press_button(env.alice, post["id"], buttons_of(post)["8"])).wait_response()
            assert "Voting has stopped" in refused["data"]["content"]  # never "Your rating: 8"
            told = await server.wait_for_message(env.channel, lambda m: "Voting has stopped" in m["content"])
            assert "restart" in told["content"]
            again = await (await server.press_button(env.carol, post["id"], buttons_of(post)["3"])).wait_response()
            assert "Voting has stopped" in again["data"]["content"]
    assert any("removed or replaced" in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)
    assert len([m for m in server.messages(env.channel) if "Voting has stopped" in m["content"]]) == 1


async def test_9_a_second_bot_on_the_same_database_refuses_to_start_naming_the_first(tmp_path):
    import os
    import signal
    import sys
    from pathlib import Path

    from fakediscord import FakeDiscord

    crowdtune = str(Path(sys.executable).parent / "crowdtune")

    async with FakeDiscord() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_")}
        env.update(DISCORD_TOKEN=server.bot_token, CROWDTUNE_DB=str(tmp_path / "bot.db"),
                   CROWDTUNE_API_BASE=server.api_base, CROWDTUNE_GATEWAY_URL=server.gateway_url)

        async def start():
            return await asyncio.create_subprocess_exec(crowdtune, "run", cwd=tmp_path, env=env,
                                                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

        first, second = await start(), None
        try:
            await server.wait_for_session()
            second = await start()
            out, err = await asyncio.wait_for(second.communicate(), timeout=60)
            assert first.returncode is None  # the first one runs on
        finally:
            for process in (first, second):  # neither outlives the test, whatever happened
                if process is not None and process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(process.communicate(), timeout=30)
        # The second never reached the gateway (the first's session ends with its clean close, as on Discord).
        assert server.events_received["IDENTIFY"] == 1
    assert second.returncode == 8  # README "Exit codes": the database cannot be used
    [line] = err.decode().strip().splitlines()
    assert "already running" in line and f"process {first.pid}" in line and "Traceback" not in line


# -- 7. ties are reported as ties; every number in a summary says what it is ----------------------


async def test_7_an_ab_tie_is_announced_as_a_tie_and_how_it_was_broken(env):
    server = env.server
    async with running(env):
        post = await first_round(env, mode="ab", rounds=3)
        await server.react(env.alice, post["id"], "🅰️")
        await server.react(env.bob, post["id"], "🅱️")
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "a 1-1 round")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        tie = (await server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"]))["content"]
        second = await server.wait_for_message(env.channel, is_round(2))
        for user in (env.alice, env.bob, env.carol):
            await server.react(user, second["id"], "👎")
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 5, "a round of 'neither'")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        neither = (await server.wait_for_message(env.channel, lambda m: "Round 2 closed" in m["content"]))["content"]
    assert "tied" in tie and "coin flip chose" in tie and " won" not in tie
    # Each close says plainly what stays: the edit the coin chose, or (three "neither") the track before.
    assert re.search(r"coin flip chose ([AB]) and \1's edit stays: ", tie), tie
    assert neither.rstrip(".").endswith("so the track before stays") and "edit stays" not in neither, neither
    # One vote each: each edit beat the track before once (a vote for an edit is a win over it too).
    a, b = ab_rewards([Ballot("alice", choice="a"), Ballot("bob", choice="b")])
    assert a == b > 5.5 and f"each beat the track before with a chance of {chance_text(a)}" in tie and "/10" not in tie
    # The edits' own chances are named as theirs, and what they were measured against; never as x/10.
    # Three "neither": the crowd preferred the track before, plainly; no margin to explain.
    assert "neither edit beat the track before (" in neither.lower() and "A " in neither and "B " in neither
    assert "clearly enough" not in neither and "needed" not in neither
    assert "/10" not in neither and "reward" not in neither
    [(outcome,)] = db_rows(env, "SELECT outcome FROM rounds WHERE idx = 0")
    assert '"tied": true' in outcome


async def test_a_waiter_that_gave_up_does_not_fail_the_batch_it_was_queued_in(env, caplog):
    """Found by CI (the loop benchmark under load): a wait for the queued votes (settle_votes, as /status and a close
    do) cancelled before the writer reached it made the writer's batch fail as a whole ("could not store 1 vote(s):
    InvalidStateError"), after its votes were stored: their quorum went unchecked and an error was logged."""
    async with running(env) as bot:
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        box = bot.runner.ballot_box
        gave_up = asyncio.create_task(box.settle_votes())
        vote = box.submit(int(post["id"]), env.alice.id, KEYCAPS[6], from_reaction=True)  # queued behind the wait
        await asyncio.sleep(0)  # the wait is queued (settle_votes' first step), not yet written
        gave_up.cancel()
        assert (await vote).status == "recorded", await vote
        await box.settle_votes()
    assert db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
