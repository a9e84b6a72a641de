"""The real bot (unmodified discord.py) against the local Discord-compatible server.

Each test runs the whole product: slash commands, rendering with FluidSynth, posting over HTTP,
votes as gateway events, storage on both backends (a SQLite file, a PostgreSQL database) and the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from dbrows import observe, query, writes_held
from fakediscord import HANG_SECONDS, Channel, FakeDiscord, Guild, Permission, User

from bot.conductor import Conductor
from bot.discord.app import CrowdtuneBot
from bot.media.drawing import Drawer
from bot.media.render import Renderer
from bot.settings import Settings
from core.features import FEATURE_NAMES
from storage import open_store

pytestmark = pytest.mark.asyncio

KEYCAPS = ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟"]


@dataclass
class Env:
    server: FakeDiscord
    guild: Guild
    channel: Channel
    mod: User
    alice: User
    bob: User
    carol: User
    db: str  # a SQLite file or a postgresql:// URL
    folder: Path
    renderer: Renderer
    drawer: Drawer


@pytest.fixture(scope="module")
def renderer():
    with Renderer.open() as loaded:
        yield loaded


@pytest.fixture(scope="module")
def drawer():
    shared = Drawer()  # one drawing process for the module's bots, as one bot process has
    yield shared
    shared.close()


@pytest_asyncio.fixture
async def env(tmp_path, renderer, drawer, db_location):
    async with FakeDiscord() as server:
        mod = server.add_user("mod")
        guild = server.add_guild("Listening Lab", owner=mod)
        channel = server.add_text_channel(guild, "music")
        users = [server.add_user(name) for name in ("alice", "bob", "carol")]
        for user in users:
            server.add_member(guild, user)
        yield Env(server, guild, channel, mod, *users, db_location, tmp_path, renderer, drawer)


@contextlib.asynccontextmanager
async def running(env: Env, **settings):
    store = await open_store(env.db)
    bot = CrowdtuneBot(Settings(_env_file=None, **settings), Conductor(store), env.renderer, env.drawer, guild_ready_timeout=0.05)
    try:
        async with env.server.connect(bot):
            await bot.wait_until_commands_synced()
            yield bot
    finally:
        await store.close()


def db_rows(env: Env, sql: str, params=()):
    return query(env.db, sql, params)


async def eventually(predicate, what: str, timeout: float = HANG_SECONDS):
    """Poll the bot's side (its database) until predicate() holds; the server cannot see it change. The bound is the
    server's wait_until's: only a hang reaches it, not a loaded 2-core machine."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def is_round(number: int):
    return lambda m: m["content"].startswith(f"**Round {number}") and m["attachments"]


async def round_recorded(env: Env, number: int) -> None:
    """Wait until round `number`'s post, seen in the channel, is recorded with its message id. Until the bot has
    Discord's answer to its post, it takes the round for one not in the channel: a /close changes nothing and a /stop
    cancels it as "being prepared" (test_stop_races, test_ended_posts and test_close_while_posting race with it on
    purpose)."""
    await eventually(
        lambda: db_rows(env, "SELECT message_ids FROM rounds WHERE idx = ?", (number - 1,)) not in ([], [("[]",)]), f"round {number} recorded"
    )


async def compose(env: Env, user: User | None = None, channel=None, **options):
    interaction = await env.server.slash(user or env.mod, channel or env.channel, "compose", options)
    return await interaction.wait_response()


async def final_answer(interaction) -> dict:
    """What the person who used a command is finally shown: the response, or the deferred ("thinking")
    message once it is filled in; a message dict with its content, flags and components."""
    response = await interaction.wait_response()
    if interaction.deferred:
        return await interaction.wait_original()
    return {"content": "", "flags": 0, "components": [], **response["data"]}


async def ballots(env: Env, round_index: int = 0):
    rows = db_rows(
        env,
        "SELECT v.voter, v.rating, v.choice FROM votes v JOIN rounds r ON r.id = v.round_id "
        "WHERE r.idx = ? AND v.retracted = 0 AND v.voided = 0 ORDER BY v.voter",
        (round_index,),
    )
    return {voter: rating if rating is not None else choice for voter, rating, choice in rows}


def uid(user: User) -> str:
    return f"user:{user.id}"


async def test_compose_in_a_server_whose_ratings_taught_something_says_how_it_opened_the_track(env):
    """A scope that has been rated starts a new session from its random track with the edits its model expects to improve it
    (core.agent.opening), and /compose says so in the server's words."""
    store = await open_store(env.db)
    try:
        await store.ensure_scope(f"guild:{env.guild.id}", "guild")
        chord = [0.0] * len(FEATURE_NAMES)
        chord[FEATURE_NAMES.index("kind:add_chord")] = 1.0
        await observe(store, f"guild:{env.guild.id}", "edits-v1", [(tuple(chord), 1.0)] * 20)
    finally:
        await store.close()
    async with running(env):
        response = await compose(env, rounds=3)
        content = response["data"]["content"]
        assert re.search(r"It starts from a random track with \d+ edits? the agent expects to improve it, from what this server's ratings taught: [^.]*added a chord", content), content
        assert content.endswith(". The first round is coming up."), content


async def test_a_session_in_a_channel_from_compose_to_the_next_round(env):
    async with running(env):
        response = await compose(env, rounds=3, tempo=100, scale="dorian", base="A#3")
        # The key named as the key spells it (a trial of the terminal found A#2 dorian where the piano roll said Bb).
        assert "Composing with this server's agent: 3 rounds in Bb3 dorian on " in response["data"]["content"], response
        post = await env.server.wait_for_message(env.channel, is_round(1))
        # What is rated is the track as it now sounds, not the change alone (a trial rated the changes: "Rate it" read
        # as the edit, and the lessons, learned from tracks, were not the ones it had in mind).
        assert "Rate the whole track 1-10 with a reaction" in post["content"], post["content"]
        names = sorted(a["filename"] for a in post["attachments"])
        assert names == ["round-1.ogg", "round-1.png"]
        ogg = env.server.attachment_bytes(next(a for a in post["attachments"] if a["filename"].endswith(".ogg")))
        assert ogg[:4] == b"OggS" and len(ogg) < 10 * 2**20
        decoded = subprocess.run(["opusdec", "--quiet", "-", "-"], input=ogg, capture_output=True, check=True).stdout
        assert len(decoded) > 44100  # more than a quarter second of 16-bit stereo audio
        await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="10 vote reactions")

        await env.server.react(env.alice, post["id"], KEYCAPS[6])
        await env.server.react(env.bob, post["id"], KEYCAPS[2])
        await env.server.react(env.bob, post["id"], KEYCAPS[8])  # latest wins: 9
        await env.server.react(env.carol, post["id"], KEYCAPS[0])
        await env.server.unreact(env.carol, post["id"], KEYCAPS[0])  # retracted
        await env.server.unreact(env.bob, post["id"], KEYCAPS[2])  # not the standing vote: no effect
        await env.server.react(env.alice, post["id"], "🎉")  # not a vote
        expected = {uid(env.alice): 7.0, uid(env.bob): 9.0}
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM vote_events")[0][0] == 5, "votes stored")
        assert await ballots(env) == expected  # the bot's own ten reactions never count

        status = await (await env.server.slash(env.alice, env.channel, "status")).wait_response()
        assert "2 voted so far" in status["data"]["content"] and status["data"]["flags"] & 64

        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await env.server.wait_for_message(env.channel, lambda m: "closed" in m["content"])
        assert "Round 1 closed" in summary["content"] and "2 voted" in summary["content"]
        await env.server.wait_for_message(env.channel, is_round(2))
        [(status_, reward)] = db_rows(env, "SELECT status, reward FROM rounds WHERE idx = 0")
        assert status_ == "closed" and reward is not None
        # A session's first round measures its new track: the edit stays, and nothing is learned about improvement.
        [(outcome,)] = db_rows(env, "SELECT outcome FROM rounds WHERE idx = 0")  # JSON text on both backends
        assert json.loads(outcome)["kept_edit"] is True
        assert db_rows(env, "SELECT COUNT(*) FROM models") == [(0,)]
        await env.server.react(env.carol, post["id"], KEYCAPS[4])  # after close: ignored
        await asyncio.sleep(0.2)
        assert await ballots(env) == expected


async def test_buttons_are_anonymous_and_confirm_privately(env):
    async with running(env):
        config = await (await env.server.slash(env.mod, env.channel, "config", {"vote_style": "buttons", "hide_results": True})).wait_response()
        assert "Updated" in config["data"]["content"]
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        assert not env.server.message(post["id"])["reactions"]
        custom = lambda value: next(  # noqa: E731
            c["custom_id"] for row in post["components"] for c in row["components"] if c["custom_id"].endswith(f":{value}")
        )
        pressed = await env.server.press_button(env.alice, post["id"], custom(7))
        reply = await pressed.wait_response()
        assert reply["data"]["flags"] & 64 and "Your rating: 7" in reply["data"]["content"]
        await (await env.server.press_button(env.alice, post["id"], custom(4))).wait_response()
        await (await env.server.press_button(env.bob, post["id"], custom(10))).wait_response()
        withdrawn = await (await env.server.press_button(env.bob, post["id"], custom("x"))).wait_response()
        assert "withdrawn" in withdrawn["data"]["content"]
        assert await ballots(env) == {uid(env.alice): 4.0}
        status = await (await env.server.slash(env.bob, env.channel, "status")).wait_response()
        content = status["data"]["content"]
        assert "1 voted so far," in content and "(" not in content  # a count only: results hidden until close


async def test_ab_rounds_with_both_and_neither(env):
    async with running(env):
        await compose(env, mode="ab", rounds=2, quorum=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        # The track before is posted too: a vote compares both edits with it.
        assert sorted(a["filename"] for a in post["attachments"]) == [
            "round-1-a.ogg", "round-1-a.png", "round-1-b.ogg", "round-1-b.png", "round-1-before.ogg"
        ]
        await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 4, what="A/B reactions")
        await env.server.react(env.alice, post["id"], "🅰️")
        await env.server.react(env.bob, post["id"], "👍")
        # /status names each edit after its side as the post does (a trial: "removed note 4; removed note 1").
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "the two votes")
        a, b = (p["description"] for p in json.loads(db_rows(env, "SELECT plan FROM rounds WHERE idx = 0")[0][0])["proposals"])
        status = (await final_answer(await env.server.slash(env.bob, env.channel, "status")))["content"]
        assert status.startswith(f"Round 1 of 2: A: {a}; B: {b}. 2 voted so far"), status
        assert f"**Round 1 of 2**: A: {a}; B: {b} (melody on " in post["content"], post["content"]
        await env.server.react(env.carol, post["id"], "👎")  # the quorum of 3 closes the round
        summary = await env.server.wait_for_message(env.channel, lambda m: "closed" in m["content"])
        # A beat the track before 2 to 1 (and B once): short of what the better of two needs (ab_keep_margin).
        assert "3 voted" in summary["content"] and "Neither edit beat the track before clearly enough" in summary["content"]
        await env.server.wait_for_message(env.channel, is_round(2))
        assert await ballots(env) == {uid(env.alice): "a", uid(env.bob): "both", uid(env.carol): "neither"}


def record_posts_late(monkeypatch, store, until: asyncio.Event | None = None) -> None:
    """A busy database: each round's post is out a second before its round records it, or until `until` is set (a test
    that acts on a post not recorded yet: a second may not be enough on a loaded machine)."""
    record = store.set_round_messages

    async def slow(*args, **kwargs):
        if until is None:
            await asyncio.sleep(1.0)
        else:
            await until.wait()
        return await record(*args, **kwargs)

    monkeypatch.setattr(store, "set_round_messages", slow)


async def test_a_reaction_on_a_post_whose_round_is_not_recorded_yet_counts_at_once(env, monkeypatch):
    async with running(env) as bot:
        record_posts_late(monkeypatch, bot.conductor.store)
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the vote")
        assert await ballots(env) == {uid(env.alice): 7.0}


async def test_a_personal_agent_in_dms_learns_only_from_its_owner(env):
    dm = env.server.dm_channel(env.alice)
    async with running(env):
        response = await compose(env, user=env.alice, channel=dm, rounds=1)
        assert "your personal agent" in response["data"]["content"]
        post = await env.server.wait_for_message(dm, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[5])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the owner's vote")
        await (await env.server.slash(env.alice, dm, "close")).wait_response()
        summary = await env.server.wait_for_message(dm, lambda m: "Round 1 closed" in m["content"])
        await env.server.wait_for_message(dm, lambda m: "Session finished" in m["content"])
    assert "You gave 6/10" in summary["content"] and "crowd" not in summary["content"], summary["content"]  # one person: not "the crowd"
    assert db_rows(env, "SELECT scope_id FROM sessions") == [(uid(env.alice),)]
    rated = "SELECT DISTINCT s.scope_id FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE r.reward IS NOT NULL"
    assert db_rows(env, rated) == [(uid(env.alice),)]


@pytest.mark.parametrize("command, options", [("config", {"quorum": 3}), ("reset", {}), ("export", {}), ("strike", {"user": None})])
async def test_moderator_commands_are_refused_to_members(env, command, options):
    if "user" in options:
        options = {"user": env.alice}
    async with running(env):
        before = db_rows(env, "SELECT COUNT(*) FROM audit")
        reply = await final_answer(await env.server.slash(env.bob, env.channel, command, options))
        assert reply["flags"] & 64 and "moderators" in reply["content"]
        assert db_rows(env, "SELECT COUNT(*) FROM audit") == before


async def test_moderators_export_strike_and_reset(env):
    async with running(env):
        # The paper's agent learns a Q-value from the raw rating of the first round (default's model, which
        # learns improvements, first learns from the second: the first measures the new track).
        await (await env.server.slash(env.mod, env.channel, "config", {"preset": "paper"})).wait_response()
        await compose(env, rounds=5)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.bob, post["id"], KEYCAPS[0])
        await env.server.react(env.alice, post["id"], KEYCAPS[7])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "votes")
        struck = await final_answer(await env.server.slash(env.mod, env.channel, "strike", {"user": env.bob}))
        assert "Voided 1 vote by" in struck["content"]  # not "1 vote(s)"
        assert await ballots(env) == {uid(env.alice): 8.0}
        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        await env.server.wait_for_message(env.channel, is_round(2))

        exported = await env.server.slash(env.mod, env.channel, "export")
        followup = await exported.wait_original()
        # In README's terms, each count with its own word (it said "1 votes, 6 audit, 1 q entries").
        assert re.fullmatch(r"Export: \d+ compositions, 2 rounds, 2 votes, \d+ audit entries, \d+ Q-values?, \d+ learned models?\.", followup["content"]), followup["content"]
        [attachment] = followup["attachments"]
        zip_path = env.folder / "export.zip"
        zip_path.write_bytes(env.server.attachment_bytes(attachment))
        with zipfile.ZipFile(zip_path) as archive:
            votes = [json.loads(line) for line in archive.read("votes.jsonl").splitlines()]
            assert {v["voter"] for v in votes} == {uid(env.alice), uid(env.bob)}
            assert all(env.server.bot_token not in archive.read(name).decode("latin-1") for name in archive.namelist())

        reset = await env.server.slash(env.mod, env.channel, "reset")
        prompt = await final_answer(reset)
        confirm = next(c["custom_id"] for row in prompt["components"] for c in row["components"] if c["label"] == "Reset the agent")
        assert db_rows(env, "SELECT COUNT(*) FROM qvalues")[0][0] > 0
        await (await env.server.press_button(env.mod, prompt["id"], confirm)).wait_response()
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM qvalues")[0][0] == 0, "reset")


async def test_moderation_whose_work_grows_with_the_data_is_acknowledged_before_it(env):
    """Voiding a user's votes, counting and clearing an agent's Q-values, deleting a person's votes: each
    grows with the history, so the command (or the confirming press) is acknowledged before the work. Here
    another connection holds the database's write lock (a long transaction): the work waits, the answers
    must not, or Discord's 3 s pass (10062) and the moderator sees "The application did not respond"."""
    server = env.server

    async def answered_while_writes_wait(act):
        async with writes_held(env.db):
            interaction = await act()
            await server.wait_until(lambda: interaction.callbacks or interaction.missed_deadline, what="an answer or the deadline")
        assert not server.missed_deadlines, f"{interaction!r} was answered only after its database work"
        return interaction

    def button(message: dict, label: str) -> str:
        return next(c["custom_id"] for row in message["components"] for c in row["components"] if c["label"] == label)

    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"preset": "paper"})).wait_response()
        await compose(env, rounds=5)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.react(env.bob, post["id"], KEYCAPS[0])
        await server.react(env.alice, post["id"], KEYCAPS[7])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "votes")

        struck = await answered_while_writes_wait(lambda: server.slash(env.mod, env.channel, "strike", {"user": env.bob}))
        assert struck.ephemeral and "Voided 1 vote by" in (await struck.wait_original())["content"]
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_for_message(env.channel, is_round(2))
        assert db_rows(env, "SELECT COUNT(*) FROM qvalues")[0][0] > 0

        reset = await answered_while_writes_wait(lambda: server.slash(env.mod, env.channel, "reset"))
        prompt = await reset.wait_original()
        assert reset.ephemeral and "Reset the agent?" in prompt["content"]
        await answered_while_writes_wait(lambda: server.press_button(env.mod, prompt["id"], button(prompt, "Reset the agent")))
        assert "The agent is reset" in (await reset.wait_original(lambda m: not m["components"]))["content"]
        assert db_rows(env, "SELECT COUNT(*) FROM qvalues")[0][0] == 0

        forget = await server.slash(env.alice, env.channel, "forget-me")
        prompt = await forget.wait_original()
        await answered_while_writes_wait(lambda: server.press_button(env.alice, prompt["id"], button(prompt, "Delete my data")))
        deleted = (await forget.wait_original(lambda m: not m["components"]))["content"]
        assert "Deleted 1 vote" in deleted and "(s)" not in deleted, deleted
        assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.alice),))[0][0] == 0


async def test_a_restart_mid_round_counts_reactions_made_while_the_bot_was_down(env):
    async with running(env):
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="reactions")
        await env.server.react(env.alice, post["id"], KEYCAPS[3])
        await env.server.react(env.bob, post["id"], KEYCAPS[5])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "votes")
    closes_at = db_rows(env, "SELECT closes_at FROM rounds WHERE idx = 0")[0][0]
    # While the bot is down: carol votes, bob withdraws.
    await env.server.react(env.carol, post["id"], KEYCAPS[9])
    await env.server.unreact(env.bob, post["id"], KEYCAPS[5])
    async with running(env):
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM vote_events")[0][0] == 4, "reconciled")
        assert await ballots(env) == {uid(env.alice): 4.0, uid(env.carol): 10.0}
        assert db_rows(env, "SELECT closes_at, status FROM rounds WHERE idx = 0") == [(closes_at, "open")]
        assert len([m for m in env.server.messages(env.channel) if is_round(1)(m)]) == 1  # not posted twice
        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        await env.server.wait_for_message(env.channel, is_round(2))
    assert json.loads(db_rows(env, "SELECT outcome FROM rounds WHERE idx = 0")[0][0])["voters"] == 2


async def test_duplicate_gateway_events_change_nothing(env):
    async with running(env):
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "vote")
        await env.server.replay_last(1)
        await env.server.replay_last(1)
        await env.server.react(env.bob, post["id"], KEYCAPS[1])  # a later event, to know the replays were handled
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "vote")
        assert db_rows(env, "SELECT COUNT(*) FROM vote_events")[0][0] == 2
        assert await ballots(env) == {uid(env.alice): 7.0, uid(env.bob): 2.0}


async def test_a_channel_without_permissions_gets_a_clear_reply_and_nothing_is_created(env):
    locked = env.server.add_text_channel(env.guild, "locked")
    env.server.set_permissions(locked, env.server.bot_user, deny=int(Permission.ATTACH_FILES | Permission.ADD_REACTIONS))
    async with running(env):
        reply = await compose(env, channel=locked)
        assert reply["data"]["flags"] & 64 and "I am missing the Attach Files and Add Reactions permissions. " in reply["data"]["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0


async def test_bad_options_get_a_polite_ephemeral_error(env):
    async with running(env):
        reply = await compose(env, base="H#9")
        assert reply["data"]["flags"] & 64 and "Sorry" in reply["data"]["content"]
        await compose(env)
        again = await compose(env)
        assert "already running" in again["data"]["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 1


async def test_a_deleted_round_message_cancels_the_round_and_the_session_goes_on(env):
    async with running(env):
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.delete_message(post["id"])
        await env.server.wait_for_message(env.channel, is_round(2))
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "cancelled"), (1, "open")]
    assert db_rows(env, "SELECT COUNT(*) FROM qvalues")[0][0] == 0


async def test_stop_and_forget_me(env):
    async with running(env):
        await compose(env, rounds=5)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[2])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "vote")
        refused = await (await env.server.slash(env.bob, env.channel, "stop")).wait_response()
        assert "Only the person who started" in refused["data"]["content"]
        stopped = await (await env.server.slash(env.mod, env.channel, "stop")).wait_response()
        assert "stopped" in stopped["data"]["content"]
        assert db_rows(env, "SELECT status FROM sessions") == [("stopped",)]

        forget = await env.server.slash(env.alice, env.channel, "forget-me")
        assert (await forget.wait_response())["type"] == 5  # deferred at once: the copy is made in a worker
        prompt = await forget.wait_original()
        [attachment] = prompt["attachments"]
        data = json.loads(env.server.attachment_bytes(attachment))
        assert data["voter"] == uid(env.alice) and len(data["votes"]) == 1
        confirm = next(c["custom_id"] for row in prompt["components"] for c in row["components"] if c["label"] == "Delete my data")
        await (await env.server.press_button(env.alice, forget.original["id"], confirm)).wait_response()
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 0, "forgotten")

