"""An answered /close fixes the round's votes, even when the bot is SIGKILLed before the close is stored (found by a
trial: the restart's recount read the reactions again and counted a change made after the answer). Through the real
bot process (`crowdtune run`) and the local Discord-compatible server, on SQLite and PostgreSQL; the close is kept
from being stored by a trigger the test puts on the database (a gate, not a guess at timing), so the kill surely
comes between the answer and the close."""

from __future__ import annotations

import contextlib

from dbrows import query
from fakediscord import Channel
from test_discord_bot import final_answer
from test_reliability_kill import KEYCAPS, BotLane, eventually, make_bot_lane

from storage import is_postgres_url

# The gate: a round's close (its status set to 'closed') fails while the trigger is there; the runner retries it.
HOLD_CLOSE_SQLITE = (
    "CREATE TRIGGER hold_close BEFORE UPDATE OF status ON rounds WHEN NEW.status = 'closed' "
    "BEGIN SELECT RAISE(ABORT, 'the test holds the close'); END",
)
HOLD_CLOSE_POSTGRES = (
    "CREATE FUNCTION hold_close() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'the test holds the close'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER hold_close BEFORE UPDATE ON rounds FOR EACH ROW WHEN (NEW.status = 'closed') EXECUTE FUNCTION hold_close()",
)


def hold_closes(db, held: bool) -> None:
    """Hold (or let go) every round's close in the database at `db` (a SQLite path or a PostgreSQL URL)."""
    postgres = is_postgres_url(str(db))
    if held:
        for sql in HOLD_CLOSE_POSTGRES if postgres else HOLD_CLOSE_SQLITE:
            query(db, sql)
    else:
        query(db, "DROP TRIGGER hold_close ON rounds" if postgres else "DROP TRIGGER hold_close")


def votes_in(lane: BotLane, channel: Channel) -> dict[str, float]:
    """The standing votes of the first round of the session in `channel`."""
    return dict(query(
        lane.db,
        "SELECT v.voter, v.rating FROM votes v JOIN rounds r ON r.id = v.round_id JOIN sessions s ON s.id = r.session_id "
        "WHERE s.channel_id = ? AND r.idx = 0 AND v.retracted = 0 AND v.voided = 0",
        (str(channel.id),),
    ))


async def first_post(lane: BotLane, channel: Channel) -> dict:
    """The session's first round in `channel`, once posted and recorded."""
    server = lane.server
    post = await server.wait_for_message(channel, lambda m: m["content"].startswith("**Round 1"))
    await eventually(
        lambda: query(lane.db, "SELECT r.message_ids FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE s.channel_id = ?",
                      (str(channel.id),)) == [(f'["{post["id"]}"]',)],
        "the round's post recorded",
    )
    return post


async def test_a_reaction_changed_after_an_answered_close_does_not_count_after_a_sigkill(tmp_path, db_location):
    async with contextlib.AsyncExitStack() as stack:
        lane = await make_bot_lane(stack, 0, "reactions", tmp_path, db_location)
        server, alice, bob, carol, dave = lane.server, *lane.voters[:4]
        other = server.add_text_channel(lane.guild, "other")  # its session's votes show that the events before were taken
        async with lane.watched():
            await lane.start()
            assert "Composing" in (await lane.slash("compose", rounds=0))["data"]["content"]
            elsewhere = await server.slash(lane.mod, other, "compose", {"rounds": 0}, check_permissions=False)
            assert "Composing" in (await elsewhere.wait_response())["data"]["content"]
            post, sentinel = await first_post(lane, lane.channel), await first_post(lane, other)
            await server.react(alice, post["id"], KEYCAPS[3])
            await eventually(lambda: votes_in(lane, lane.channel) == {f"user:{alice.id}": 4.0}, "alice's 4")
            # Bob's 9, made before the /close, never comes as an event (the gateway session is lost): the close reads it.
            identified = server.events_received["IDENTIFY"]
            await server.drop_connections(code=4000, resumable=False)
            await server.react(bob, post["id"], KEYCAPS[8])
            await server.wait_until(lambda: server.events_received["IDENTIFY"] > identified and any(s.connected for s in server.sessions),
                                    what="a new gateway session")
            assert votes_in(lane, lane.channel) == {f"user:{alice.id}": 4.0}  # bob's event never came
            hold_closes(lane.db, True)
            closing = await final_answer(await server.slash(lane.mod, lane.channel, "close", check_permissions=False))
            assert closing["content"] == "Closing this round now.", closing
            # After the answer: alice changes her 4 to a 7 and carol votes; then a vote in the other channel is stored,
            # so every event before it was taken by the bot (one gateway connection, one vote writer, in order).
            await server.react_many([(alice, post["id"], KEYCAPS[3], False), (alice, post["id"], KEYCAPS[6], True)])
            await server.react(carol, post["id"], KEYCAPS[0])
            await server.react(dave, sentinel["id"], KEYCAPS[4])
            await eventually(lambda: votes_in(lane, other) == {f"user:{dave.id}": 5.0}, "the vote in the other channel")
            assert votes_in(lane, lane.channel) == {f"user:{alice.id}": 4.0, f"user:{bob.id}": 9.0}  # as the /close took them
            await lane.kill()  # the close is not stored: the trigger refuses it
            assert query(lane.db, "SELECT r.status FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE s.channel_id = ?",
                         (str(lane.channel.id),)) == [("open",)]
            hold_closes(lane.db, False)
            await lane.start()
            summary = await server.wait_for_message(lane.channel, lambda m: m["content"].startswith("**Round 1 closed**"))
            await lane.stop()
    # The votes as the /close took them: alice's 4 (not the 7 after it), bob's 9 (whose event never came), no carol.
    assert votes_in(lane, lane.channel) == {f"user:{alice.id}": 4.0, f"user:{bob.id}": 9.0}
    assert "2 voted" in summary["content"], summary["content"]
