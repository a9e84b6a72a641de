"""A Confirm press that Discord acknowledged is carried out, even when the bot process is SIGKILLed right after the
acknowledgement (found by a trial: killed at once, 5 of 6 /reset presses were lost: nothing done, nothing recorded,
pressing again said the question expired). Through the real bot process (`crowdtune run`) and the local
Discord-compatible server, on SQLite and PostgreSQL; the server takes the acknowledgement and holds its reply (a gate,
not a guess at timing), so the kill surely comes after Discord took the press and before the bot heard back."""

from __future__ import annotations

import contextlib

from dbrows import query
from test_close_kill import first_post
from test_reliability_kill import KEYCAPS, eventually, make_bot_lane

CALLBACK = "POST /interactions/{webhook_id}/{webhook_token}/callback"


async def test_a_confirm_press_acknowledged_just_before_a_sigkill_is_carried_out_once_after_the_restart(tmp_path, db_location):
    async with contextlib.AsyncExitStack() as stack:
        lane = await make_bot_lane(stack, 0, "reactions", tmp_path, db_location)
        server = lane.server
        async with lane.watched():
            await lane.start()
            # A round rated and closed, so the agent has learned and /reset asks (the paper preset learns from one).
            assert "Updated" in (await lane.slash("config", preset="paper"))["data"]["content"]
            assert "Composing" in (await lane.slash("compose", rounds=0))["data"]["content"]
            await server.react(lane.voters[0], (await first_post(lane, lane.channel))["id"], KEYCAPS[7])
            await eventually(lambda: query(lane.db, "SELECT COUNT(*) FROM votes") == [(1,)], "the vote")
            await lane.slash("close")
            await eventually(lambda: query(lane.db, "SELECT COUNT(*) FROM qvalues") != [(0,)], "the agent learned")
            reset = await server.slash(lane.mod, lane.channel, "reset", check_permissions=False)
            question = await reset.wait_original(lambda m: m["components"])
            confirm = next(c["custom_id"] for row in question["components"] for c in row["components"] if c["label"] == "Reset the agent")
            server.hold(CALLBACK, answered=True)
            press = await server.press_button(lane.mod, question["id"], confirm)
            await server.wait_until(lambda: press.callbacks, what="the press acknowledged")
            assert press.callbacks[0]["type"] == 6  # the member sees it taken
            # Recorded by now, or (a database slower than RECORD_SECONDS on a loaded machine) right after: the reply is
            # held, so a bot that records only after hearing it back never gets here.
            await eventually(lambda: query(lane.db, "SELECT COUNT(*) FROM confirmed_requests") == [(1,)], "the press recorded")
            await lane.kill()
            server.release(CALLBACK)
            await lane.start()
            outcome = await reset.wait_original(lambda m: not m["components"])
            await eventually(lambda: query(lane.db, "SELECT COUNT(*) FROM confirmed_requests") == [(0,)], "the record done")
            await lane.stop()
    assert outcome["content"] == "The agent is reset: it starts learning afresh from the next round.", outcome["content"]
    assert query(lane.db, "SELECT COUNT(*) FROM audit WHERE action = 'reset'") == [(1,)]
