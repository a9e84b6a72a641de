"""Security: who may run which command, one server never sees or changes another's data, a personal
agent's data reaches only its user, exports hold no token and nothing of another scope and cannot
write outside their folder, per-person vote rate limiting, and anti-brigading."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from dbrows import query, tables
from fakediscord import Permission
from fakediscord.interactions import APPLICATION_COMMAND
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_discord_bot import (  # noqa: F401
    KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running, uid,
)
from test_reliability_kill import record_figures

from bot.discord.ballot_box import VoteLimiter
from storage import open_store
from storage.export import export_zip


MODERATOR_ONLY = "This command is for moderators"
NOT_THE_STARTER = "Only the person who started this session or a moderator"
SERVER_ONLY = "works only in a server"


def fingerprint(env) -> dict:
    """Everything a command could change, to prove a refused one changed nothing."""
    return {t: sorted(map(repr, query(env.db, f"SELECT * FROM {t}"))) for t in tables(env.db)}


async def raw_slash(server, user, channel, name: str, options: list[dict], resolved: dict | None = None):
    """A slash command exactly as given: no check of the options, the context or the user's
    permissions, as a modified client (or a forged request) could send it."""
    command = next(c for scope in server.commands.values() for c in scope if c["name"] == name)
    data = {"id": command["id"], "name": name, "type": 1, "options": options}
    if resolved:
        data["resolved"] = resolved
    return await server._interact(user, server._channel(channel), APPLICATION_COMMAND, data)


# -- the permission matrix --------------------------------------------------------------------

ACTORS = ("member", "manage_server", "mod_role", "owner", "dm_user")
EVERYONE = dict.fromkeys(ACTORS, True)
MODERATORS = {**EVERYONE, "member": False}
# README "Commands": what each kind of person may do.
MATRIX = {
    "compose": EVERYONE,
    "status": EVERYONE,
    "stats": EVERYONE,
    "top": EVERYONE,
    "forget-me": EVERYONE,
    "close": MODERATORS,  # or the person who started the session (in a DM: the user)
    "stop": MODERATORS,
    "config": MODERATORS,  # in a DM the user moderates their personal agent
    "reset": MODERATORS,
    "export": MODERATORS,
    "strike": {**MODERATORS, "dm_user": False},  # servers only
    "unstrike": {**MODERATORS, "dm_user": False},
}
ALLOWED_REPLY = {
    "compose": "Composing",
    "status": "Round 1",
    "stats": "",
    "top": "",
    "forget-me": ("Here is your data", "Nothing of yours is stored on any server"),  # who has voted / who has not
    "close": "Closing this round",
    # A /stop right after an answered /close waits for that close: it is acknowledged privately and says it publicly.
    "stop": ("Session stopped", "Stopped; I said so in the channel."),
    "config": "Updated",
    "reset": ("Reset the agent?", "there is nothing to reset"),  # an agent that learned / one that has not
    "export": "",
    "strike": "Voided",
    "unstrike": "Lifted the strike",
}


@pytest.mark.parametrize("actor", ACTORS)
async def test_permission_matrix_for_every_command(env, actor):
    server = env.server
    managers = server.add_role(env.guild, "Managers", permissions=int(Permission.MANAGE_GUILD))
    helpers = server.add_role(env.guild, "Helpers")
    people = {
        "member": env.bob,
        "manage_server": server.add_user("manager"),
        "mod_role": server.add_user("helper"),
        "owner": env.mod,
        "dm_user": env.carol,
    }
    server.add_member(env.guild, people["manage_server"], roles=[managers])
    server.add_member(env.guild, people["mod_role"], roles=[helpers])
    person = people[actor]
    here = server.dm_channel(person) if actor == "dm_user" else env.channel
    elsewhere = server.add_text_channel(env.guild, "free")
    async with running(env):
        await raw_slash(server, env.mod, env.channel, "config", [{"name": "mod_role", "type": 8, "value": str(helpers.id)}],
                        {"roles": {str(helpers.id): helpers.payload()}})
        await eventually(lambda: "mod_role" in (db_rows(env, "SELECT settings FROM scopes") or [("",)])[0][0], "the mod role set")
        if actor == "dm_user":  # a DM has no session until the user starts one: /compose goes first
            reply = await (await server.slash(person, here, "compose", {"rounds": 5})).wait_response()
            assert ALLOWED_REPLY["compose"] in reply["data"]["content"]
            outcomes = {"compose": reply}
        else:
            await compose(env, user=env.mod, rounds=5)  # started by the owner, not by the person tested
            outcomes = {}
        await server.wait_for_message(here, is_round(1))
        await round_recorded(env, 1)  # /close and /status take it as posted
        order = ["status", "stats", "top", "config", "export", "strike", "unstrike", "reset", "forget-me", "close", "stop", "compose"]
        checked = 1 if outcomes else 0
        for command in order:
            if command in outcomes:
                continue
            options = {"config": [{"name": "quorum", "type": 4, "value": 3}],
                       "strike": [{"name": "user", "type": 6, "value": str(env.alice.id)}],
                       "unstrike": [{"name": "user", "type": 6, "value": str(env.alice.id)}]}.get(command, [])
            resolved = {"users": {str(env.alice.id): env.alice.payload()}} if command in ("strike", "unstrike") else None
            target = elsewhere if command == "compose" else here
            before = fingerprint(env)
            interaction = await raw_slash(server, person, target, command, options, resolved)
            response = await interaction.wait_response()
            if interaction.deferred:  # acknowledged at once ("thinking"), then the original response is the answer
                response = {"data": await interaction.wait_original()}
            outcomes[command] = response
            text = (response.get("data") or {}).get("content") or ""
            refused = any(marker in text for marker in (MODERATOR_ONLY, NOT_THE_STARTER, SERVER_ONLY))
            assert refused != MATRIX[command][actor], f"{actor} /{command}: {text!r}"
            checked += 1
            if refused:
                assert response["data"]["flags"] & 64  # only the person who asked sees it
                assert fingerprint(env) == before, f"{actor} /{command} was refused but changed something"
                continue
            if command == "export":
                assert response["data"]["attachments"][0]["filename"].endswith(".zip")
                await eventually(lambda: db_rows(env, "SELECT 1 FROM audit WHERE action = 'export'"), "the export audited")
            else:
                allowed = ALLOWED_REPLY[command]
                assert any(reply in text for reply in ((allowed,) if isinstance(allowed, str) else allowed)), f"{actor} /{command}: {text!r}"
            if command in ("reset", "forget-me") and response["data"]["components"]:  # answer the confirmation: Cancel
                cancel = next(c["custom_id"] for row in response["data"]["components"] for c in row["components"] if c["label"] == "Cancel")
                await (await server.press_button(person, interaction.original["id"], cancel)).wait_response()
    assert checked == len(MATRIX)
    record_figures(f"permission_matrix_{actor}", commands_checked=checked)


# -- scopes -----------------------------------------------------------------------------------


async def test_one_server_never_sees_or_changes_another_servers_data(env):
    server = env.server
    other = server.add_guild("Other Place")
    other_channel = server.add_text_channel(other, "music")
    server.add_member(other, env.alice)
    async with running(env):
        await compose(env, rounds=3)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.react(env.alice, post["id"], KEYCAPS[7])
        await server.react(env.bob, post["id"], KEYCAPS[2])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "votes")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_for_message(env.channel, is_round(2))
        before = db_rows(env, "SELECT * FROM qvalues"), db_rows(env, "SELECT * FROM votes")

        owner = server.world.users[other.owner_id]
        ask = lambda name, options=None: server.slash(owner, other_channel, name, options or {})  # noqa: E731
        assert "No session is running here" in (await (await ask("status")).wait_response())["data"]["content"]
        stats = await ask("stats")
        assert "No rounds with votes" in (await stats.wait_original())["content"]
        top = await ask("top")
        assert "No rounds with votes" in (await top.wait_original())["content"]
        exported = await ask("export")
        followup = await exported.wait_original()
        archive = zipfile.ZipFile(io.BytesIO(server.attachment_bytes(followup["attachments"][0])))
        assert not [n for n in archive.namelist() if n.endswith(".mid")]
        assert archive.read("votes.jsonl") == b"" and archive.read("rounds.jsonl") == b""
        assert str(env.guild.id) not in b"".join(archive.read(n) for n in archive.namelist()).decode()
        await (await ask("config", {"quorum": 1, "vote_style": "buttons"})).wait_response()
        await (await ask("strike", {"user": env.alice})).wait_original()  # alice is struck in Other Place only
        # Its agent has learned nothing, this server's has: a /reset there reads its own scope, and asks nothing.
        reset = await ask("reset")
        assert "there is nothing to reset" in (await reset.wait_original())["content"]
        # A vote forged from the other server onto this server's round does not count.
        await server.dispatch("MESSAGE_REACTION_ADD", {
            "user_id": str(env.carol.id), "message_id": str(post["id"]), "channel_id": str(env.channel.id),
            "guild_id": str(other.id), "emoji": {"id": None, "name": KEYCAPS[0]}, "type": 0, "burst": False,
        })
        second = server.messages(env.channel)[-1]
        await server.react(env.alice, second["id"], KEYCAPS[4])  # alice still votes here
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 3, "alice's vote here")
    assert (db_rows(env, "SELECT * FROM qvalues"), db_rows(env, "SELECT * FROM votes WHERE round_id = 1")) == (before[0], before[1])
    settings_here = json.loads(db_rows(env, "SELECT settings FROM scopes WHERE id = ?", (f"guild:{env.guild.id}",))[0][0])
    assert "quorum" not in settings_here and "vote_style" not in settings_here
    assert db_rows(env, "SELECT scope_id, voter FROM strikes") == [(f"guild:{other.id}", uid(env.alice))]


async def test_a_personal_agents_data_reaches_only_its_user(env):
    server = env.server
    alice_dm, bob_dm = server.dm_channel(env.alice), server.dm_channel(env.bob)
    async with running(env):
        await compose(env, user=env.alice, channel=alice_dm, rounds=2)
        post = await server.wait_for_message(alice_dm, is_round(1))
        await server.react(env.alice, post["id"], KEYCAPS[8])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "alice's vote")
        # Bob cannot react in alice's DM; a forged event for it does not count either.
        await server.dispatch("MESSAGE_REACTION_ADD", {
            "user_id": str(env.bob.id), "message_id": str(post["id"]), "channel_id": str(alice_dm.id),
            "emoji": {"id": None, "name": KEYCAPS[0]}, "type": 0, "burst": False,
        })
        await (await server.slash(env.alice, alice_dm, "close")).wait_response()
        await server.wait_for_message(alice_dm, is_round(2))
        for name in ("stats", "top"):
            reply = await server.slash(env.bob, bob_dm, name)
            assert "No rounds with votes" in (await reply.wait_original())["content"]
        status = await (await server.slash(env.bob, bob_dm, "status")).wait_response()
        assert "No session is running here" in status["data"]["content"]
        for user, channel in ((env.bob, bob_dm), (env.mod, env.channel)):  # bob's own export, and the server's
            exported = await server.slash(user, channel, "export")
            followup = await exported.wait_original()
            archive = zipfile.ZipFile(io.BytesIO(server.attachment_bytes(followup["attachments"][0])))
            everything = b"".join(archive.read(n) for n in archive.namelist()).decode()
            assert str(env.alice.id) not in everything
        mine = await server.slash(env.alice, alice_dm, "export")
        followup = await mine.wait_original()
        archive = zipfile.ZipFile(io.BytesIO(server.attachment_bytes(followup["attachments"][0])))
        assert {json.loads(line)["scope"] for line in archive.read("rounds.jsonl").splitlines()} == {uid(env.alice)}
    assert await ballots(env) == {uid(env.alice): 9.0}


# -- exports ----------------------------------------------------------------------------------


async def test_an_export_holds_no_token_and_no_other_scopes_data(env, tmp_path):
    async with running(env) as bot:
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[5])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "a vote")
        await (await env.server.slash(env.alice, env.server.dm_channel(env.alice), "compose", {"rounds": 1})).wait_response()
        exported = await env.server.slash(env.mod, env.channel, "export")
        followup = await exported.wait_original()
        token = bot.http.token
    data = env.server.attachment_bytes(followup["attachments"][0])
    assert token.encode() not in data and token not in zipfile.ZipFile(io.BytesIO(data)).read("audit.jsonl").decode()
    archive = zipfile.ZipFile(io.BytesIO(data))
    for name in ("rounds.jsonl", "votes.jsonl", "audit.jsonl", "sessions.jsonl"):
        scopes = {json.loads(line)["scope"] for line in archive.read(name).splitlines()}
        assert scopes <= {f"guild:{env.guild.id}"}, (name, scopes)
    assert set(json.loads(archive.read("qtable.json"))) <= {f"guild:{env.guild.id}"}
    assert all(n.startswith(f"compositions/guild_{env.guild.id}/") for n in archive.namelist() if n.endswith(".mid"))


SCOPE_NAMES = st.text(min_size=1, max_size=200).filter(lambda s: s.strip())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(SCOPE_NAMES, min_size=1, max_size=3, unique=True))
def test_names_inside_an_export_cannot_escape_its_folder(tmp_path_factory, names):
    from bot.conductor import Conductor
    from core.engine import SessionSpec

    folder = tmp_path_factory.mktemp("export")

    async def build_and_export():
        store = await open_store(folder / "export.db")
        try:
            conductor = Conductor(store)
            for number, name in enumerate(names):
                session = await conductor.start(f"local:{name}", "local", f"c{number}", SessionSpec(rounds=2), actor="t")
                await conductor.open_round(session.id)
            await export_zip(store, folder / "out" / "export.zip")
        finally:
            await store.close()

    asyncio.run(build_and_export())
    target = (folder / "unpacked").resolve()
    with zipfile.ZipFile(folder / "out" / "export.zip") as archive:
        for name in archive.namelist():
            path = PurePosixPath(name)
            assert not path.is_absolute() and ".." not in path.parts and "\\" not in name and ":" not in name, name
            assert all(ord(c) >= 32 for c in name), name
            assert (target / name).resolve().is_relative_to(target), name
        archive.extractall(target)
    scopes = [p.name for p in (target / "compositions").iterdir()]
    assert len(scopes) == len(names)  # distinct scopes stay distinct folders
    assert sorted(p.relative_to(target).parts[0] for p in target.rglob("*") if p.is_file())[0] in ("audit.jsonl", "compositions")
    assert not list((folder / "out").glob(".export-*"))  # no temporary left beside it


# -- vote rate limiting -------------------------------------------------------------------------


def test_the_vote_limiter_is_a_token_bucket_per_person():
    now = [0.0]
    limiter = VoteLimiter(burst=3, refill_seconds=10.0, clock=lambda: now[0])
    assert [limiter.allow(1) for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow(2)  # another person has a bucket of their own
    now[0] = 9.9
    assert not limiter.allow(1)
    now[0] = 10.0
    assert limiter.allow(1) and not limiter.allow(1)
    now[0] = 1000.0
    assert [limiter.allow(1) for _ in range(4)] == [True, True, True, False]  # refills up to the burst only


async def test_vote_changes_over_the_rate_are_refused_politely_or_left_to_the_close(env):
    async with running(env, vote_burst=3, vote_refill_seconds=3600) as bot:
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="reactions")
        sequence = [KEYCAPS[i] for i in (0, 1, 2, 3, 4, 5, 6)]
        for previous, emoji in zip([None, *sequence], sequence):  # alice changes her mind seven times
            actions = [(env.alice, post["id"], previous, False)] if previous else []
            await env.server.react_many([*actions, (env.alice, post["id"], emoji, True)])
        await env.server.react(env.bob, post["id"], KEYCAPS[1])  # bob is not slowed by alice
        await eventually(lambda: uid(env.bob) in str(db_rows(env, "SELECT voter FROM votes")), "bob's vote")
        applied = db_rows(env, "SELECT COUNT(*) FROM vote_events WHERE voter = ?", (uid(env.alice),))[0][0]
        assert applied <= 3  # her burst; the rest waited for the close
        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        await env.server.wait_for_message(env.channel, is_round(2))
        # The reaction she left counts: rate limiting never loses the vote a person ends with.
        assert await ballots(env, 0) == {uid(env.alice): 7.0, uid(env.bob): 2.0}

        await (await env.server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await (await env.server.slash(env.mod, env.channel, "stop")).wait_response()
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        button = {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in post["components"] for c in row["components"]}
        replies = []
        for value in ("3", "4", "5", "6"):
            replies.append((await (await env.server.press_button(env.carol, post["id"], button[value])).wait_response())["data"])
        assert all(r["flags"] & 64 for r in replies)
        assert "very fast" in replies[-1]["content"] and "Your rating: 5" in replies[-2]["content"]
        assert bot.runner.limiter.burst == 3
    rows = db_rows(env, "SELECT v.rating FROM votes v JOIN rounds r ON r.id = v.round_id WHERE r.session_id = 2 AND v.voter = ?", (uid(env.carol),))
    assert rows == [(5.0,)]  # the refused press changed nothing


# -- anti-brigading -----------------------------------------------------------------------------


async def test_anti_brigading_sets_aside_accounts_that_joined_after_the_round_began(env):
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"anti_brigade": True})).wait_response()
        await compose(env, rounds=3)
        post = await server.wait_for_message(env.channel, is_round(1))
        raiders = [server.add_user(f"raider{i}") for i in range(3)]
        for raider in raiders:
            server.add_member(env.guild, raider, joined_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
        await server.react(env.alice, post["id"], KEYCAPS[7])
        for raider in raiders:
            await server.react(raider, post["id"], KEYCAPS[0])
        # Stored like any vote (brigade20), and set aside by every count while the rule covers them.
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 4, "the four votes")
        said = (await final_answer(await server.slash(env.mod, env.channel, "status")))["content"]
        assert "1 voted so far (8)" in said and "3 votes set aside" in said, said
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_for_message(env.channel, is_round(2))
        # The close re-read the reactions and still left the newcomers out: their votes are voided.
        assert await ballots(env, 0) == {uid(env.alice): 8.0}

        await (await server.slash(env.mod, env.channel, "config", {"anti_brigade": False, "vote_style": "buttons"})).wait_response()
        await (await server.slash(env.mod, env.channel, "stop")).wait_response()
        await (await server.slash(env.mod, env.channel, "config", {"anti_brigade": True})).wait_response()
        await compose(env, rounds=3)
        post = await server.wait_for_message(env.channel, is_round(1))
        latecomer = server.add_user("latecomer")
        server.add_member(env.guild, latecomer, joined_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
        button = {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in post["components"] for c in row["components"]}
        refused = await (await server.press_button(latecomer, post["id"], button["1"])).wait_response()
        assert "set aside: in this server votes count only from members who joined before the round began" in refused["data"]["content"]
        counted = await (await server.press_button(env.bob, post["id"], button["6"])).wait_response()
        assert "Your rating: 6" in counted["data"]["content"]
    rows = db_rows(env, "SELECT voter FROM votes v JOIN rounds r ON r.id = v.round_id WHERE r.session_id = 2")
    assert sorted(rows) == sorted([(uid(env.bob),), (uid(latecomer),)])  # the latecomer's stored, set aside


async def test_without_anti_brigading_newcomers_vote(env):
    server = env.server
    async with running(env):
        await compose(env, rounds=3)
        post = await server.wait_for_message(env.channel, is_round(1))
        newcomer = server.add_user("newcomer")
        server.add_member(env.guild, newcomer, joined_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
        await server.react(newcomer, post["id"], KEYCAPS[2])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the newcomer's vote")
    assert await ballots(env) == {uid(newcomer): 3.0}


def member_since(server, guild, name: str, days: float):
    """A member who joined the server `days` days ago (a round opened now began that long after)."""
    user = server.add_user(name)
    server.add_member(guild, user, joined_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days))
    return user


def buttons_of(post) -> dict[str, str]:
    return {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in post["components"] for c in row["components"]}


async def config(env, where=None, user=None, **options) -> str:
    return (await (await env.server.slash(user or env.mod, where or env.channel, "config", options)).wait_response())["data"]["content"]


async def test_a_membership_age_counts_reactions_only_from_members_that_many_days_old(env):
    server = env.server
    async with running(env):
        assert "at least 1 day before the round began" in await config(env, member_days=1)
        await compose(env, rounds=3)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.wait_until(lambda: len(server.message(post["id"])["reactions"]) == 10, what="reactions")
        two_days = member_since(server, env.guild, "two_days", 2)
        second = member_since(server, env.guild, "second_two_days", 2)
        veteran = member_since(server, env.guild, "veteran", 30)
        await server.react(two_days, post["id"], KEYCAPS[4])  # 2 days >= 1: counted
        await server.react(veteran, post["id"], KEYCAPS[8])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "two votes")
        # Raised to 3 days while the round is open: it applies at once.
        assert "at least 3 days before the round began" in await config(env, member_days=3)
        await server.react(second, post["id"], KEYCAPS[0])  # 2 days < 3: stored, set aside
        await server.react(veteran, post["id"], KEYCAPS[9])  # a change by a member of 30 days still counts
        await eventually(lambda: db_rows(env, "SELECT rating FROM votes WHERE voter = ?", (uid(veteran),)) == [(10.0,)], "the veteran's change")
        # Every vote is stored; the count sets aside those the rule covers now (test_set_aside.py).
        assert await ballots(env) == {uid(two_days): 5.0, uid(second): 1.0, uid(veteran): 10.0}
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_for_message(env.channel, is_round(2))
    # The close re-read the reactions under the 3-day rule: only the veteran's stands.
    assert await ballots(env, 0) == {uid(veteran): 10.0}
    assert db_rows(env, "SELECT voided FROM votes WHERE voter = ?", (uid(second),)) == [(1,)]


async def test_a_membership_age_sets_buttons_and_aspect_menus_aside_politely(env):
    server = env.server
    two_days = member_since(server, env.guild, "two_days", 2)
    veteran = member_since(server, env.guild, "veteran", 30)
    async with running(env):
        await config(env, vote_style="buttons", member_days=3)
        await compose(env, rounds=3)
        post = await server.wait_for_message(env.channel, is_round(1))
        button = buttons_of(post)
        refused = (await (await server.press_button(two_days, post["id"], button["2"])).wait_response())["data"]
        assert refused["flags"] & 64 and "\n" not in refused["content"]
        assert refused["content"] == (
            "Your vote is kept but set aside: in this server votes count only from members who joined at least 3 days "
            "before the round began. It counts if that is lowered before the round closes."
        )
        counted = (await (await server.press_button(veteran, post["id"], button["7"])).wait_response())["data"]
        assert "Your rating: 7" in counted["content"]
        assert "at least 1 day before" in await config(env, member_days=1)  # lowered: the same press now counts
        again = (await (await server.press_button(two_days, post["id"], button["2"])).wait_response())["data"]
        assert "Your rating: 2" in again["content"]
        assert await ballots(env) == {uid(two_days): 2.0, uid(veteran): 7.0}

        await (await server.slash(env.mod, env.channel, "stop")).wait_response()
        await config(env, member_days=3)
        await compose(env, rounds=3, aspects=True)
        post = await server.wait_for_message(env.channel, is_round(1))
        menu = next(c for row in post["components"] for c in row["components"] if c["custom_id"].endswith(":novelty"))
        chosen = await (await server.select(two_days, post["id"], menu["custom_id"], ["6"])).wait_response()
        assert "at least 3 days before the round began" in chosen["data"]["content"]
        chosen = await (await server.select(veteran, post["id"], menu["custom_id"], ["6"])).wait_response()
        assert "Your novelty: 6" in chosen["data"]["content"]
    rows = db_rows(env, "SELECT voter FROM votes v JOIN rounds r ON r.id = v.round_id WHERE r.session_id = 2")
    assert sorted(rows) == sorted([(uid(veteran),), (uid(two_days),)])  # the newcomer's stored, set aside


async def test_a_personal_agent_is_not_affected_by_a_membership_age(env):
    server = env.server
    dm = server.dm_channel(env.alice)
    async with running(env):
        said = await config(env, dm, env.alice, vote_style="buttons", anti_brigade=True, member_days=365)
        assert said.endswith("anti_brigade applies in servers only: a personal agent counts its owner's votes.")
        await compose(env, user=env.alice, channel=dm, rounds=3)
        post = await server.wait_for_message(dm, is_round(1))
        counted = await (await server.press_button(env.alice, post["id"], buttons_of(post)["8"])).wait_response()
        assert "Your rating: 8" in counted["data"]["content"]  # in a DM there is no server to have joined
    assert await ballots(env) == {uid(env.alice): 8.0}


async def test_config_shows_and_sets_the_membership_age_within_0_to_365_days(env):
    server = env.server
    async with running(env):
        shown = await config(env)
        assert shown.endswith("anti_brigade: off, so votes count from everyone.") and "member_days" not in shown
        declared = next(o for o in server.command("config")["options"] if o["name"] == "member_days")
        assert (declared["type"], declared["min_value"], declared["max_value"]) == (4, 0, 365)
        assert len(declared["description"]) <= 100

        # A membership age turns anti-brigading on, and the answer says in one line what now counts.
        updated = await config(env, member_days=3)
        assert updated.startswith("Updated") and updated.endswith(
            "anti_brigade: on, member_days: 3, so votes count only from members who joined at least 3 days before the round "
            "began (at once, also in open rounds).")
        assert "member_days: 3" in await config(env)  # kept
        off = await config(env, anti_brigade=False)
        assert "anti_brigade: off, so votes count from everyone (member_days: 3 applies once anti_brigade is on)." in off
        # Off and given a membership age in the same command: it stays off, as asked.
        assert "anti_brigade: off" in await config(env, anti_brigade=False, member_days=5)
        zero = await config(env, anti_brigade=True, member_days=0)
        assert zero.endswith("votes count only from members who joined before the round began (at once, also in open rounds).")
        assert "anti_brigade: on" in await config(env, member_days=0)  # 0 leaves anti-brigading as it is
        assert "servers only" in await config(env, server.dm_channel(env.mod), member_days=3)  # a personal agent

        # Out of 0..365 Discord's client refuses to send the command (min_value/max_value) ...
        before = fingerprint(env)
        for days in (-1, 366, 10**6):
            with pytest.raises(ValueError, match="out of bounds"):
                await server.slash(env.mod, env.channel, "config", {"member_days": days})
        # ... and a forged request that skips the client gets one polite line and changes nothing.
        for days in (-1, 366, 2.5):
            forged = await raw_slash(server, env.mod, env.channel, "config", [{"name": "member_days", "type": 4, "value": days}])
            content = (await forged.wait_response())["data"]["content"]
            assert content.startswith("Sorry") and "\n" not in content, content
        assert fingerprint(env) == before
    assert [json.loads(d) for (d,) in db_rows(env, "SELECT detail FROM audit WHERE action = 'config' ORDER BY id")][:2] == [
        {"member_days": 3, "anti_brigade": True}, {"anti_brigade": False},
    ]


def test_the_cli_export_of_one_scope_holds_only_that_scope(tmp_path):
    from bot.cli import main

    async def build():
        from bot.conductor import Conductor
        from core.engine import SessionSpec

        store = await open_store(tmp_path / "ct.db")
        conductor = Conductor(store)
        for scope in ("guild:1", "guild:2"):
            session = await conductor.start(scope, "guild", scope, SessionSpec(rounds=2), actor="user:9")
            round_ = await conductor.open_round(session.id)
            await conductor.vote(round_.id, f"user:{scope[-1]}00", 7)
            await conductor.close(round_.id)
        await store.close()

    asyncio.run(build())
    assert main(["export", "--db", str(tmp_path / "ct.db"), "--scope", "guild:1", "--out", str(tmp_path / "one.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        everything = b"".join(archive.read(n) for n in archive.namelist()).decode("latin-1")
    assert "guild:1" in everything and "guild:2" not in everything and "user:200" not in everything
    assert Path(tmp_path / "one.zip").stat().st_size > 0
