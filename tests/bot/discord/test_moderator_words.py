"""What /config and /forget-me say, in a moderator's and a member's words, and the one round-length limit
every place states (the real bot against the local Discord-compatible server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, is_round, renderer, running, uid  # noqa: F401

from bot.settings import CommandSettings, expected
from core.engine import ROUND_SECONDS_MAX, ROUND_SECONDS_MIN, SessionSpec

pytestmark = pytest.mark.asyncio
README = Path(__file__).resolve().parents[3] / "README.md"
# The options /config takes that its answer lists (hide_results, anti_brigade and member_days are said in sentences of their own).
LISTED = ("preset", "exploration", "round_minutes", "quorum", "rounds", "vote_style", "hide_results", "mod_role", "share_learning")


async def config(env, where=None, **options) -> str:
    return (await (await env.server.slash(env.mod, where or env.channel, "config", options)).wait_response())["data"]["content"]


async def test_config_answers_with_the_options_it_takes_each_once_in_their_units_and_words(env):
    async with running(env):
        shown = await config(env)
        for option in LISTED:
            assert shown.count(f"{option}: ") == 1, (option, shown)
        assert "round_minutes: 5," in shown  # the operator's 300 s, in the option's minutes
        assert "hide_results: off" in shown and "share_learning: off" in shown
        assert "exploration: the preset's (Thompson sampling)" in shown and "rounds: 10" in shown and "quorum: none" in shown
        assert not re.search(r"True|False|round seconds|anti brigade:|member days:", shown), shown
        assert shown.count("anti_brigade") == 1 and shown.count("\n") == 0

        updated = await config(env, round_minutes=0.25, hide_results=True, rounds=0, preset="paper", anti_brigade=True)
        assert updated.startswith("Updated. Sessions started from now use: preset: paper,")
        assert "round_minutes: 0.25," in updated and "hide_results: on" in updated and "rounds: endless" in updated
        assert "exploration: the preset's (epsilon_decay)" in updated
        assert "anti_brigade: on" in updated and "member_days" in updated
        assert "exploration: softmax" in await config(env, exploration="softmax")


async def forget(env, user, channel, press: str | None = None) -> dict:
    """/forget-me's prompt (the original response once filled in), after pressing `press` if given: its final form."""
    asked = await env.server.slash(user, channel, "forget-me")
    prompt = await asked.wait_original()
    if press is None:
        return prompt
    button = next(c["custom_id"] for row in prompt["components"] for c in row["components"] if c["label"] == press)
    await (await env.server.press_button(user, prompt["id"], button)).wait_response()
    return await asked.wait_original(lambda m: not m["components"])


async def test_forget_me_names_only_what_is_stored_and_offers_nothing_when_nothing_is(env):
    server = env.server
    async with running(env):
        await compose(env, rounds=3)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the vote")

        prompt = await forget(env, env.alice, env.channel)
        assert "1 vote" in prompt["content"] and "Delete it all?" in prompt["content"]
        assert "Q-value" not in prompt["content"] and "personal agent" not in prompt["content"], prompt["content"]
        deleted = await forget(env, env.alice, env.channel, press="Delete my data")
        assert "Deleted 1 vote" in deleted["content"]
        # Trial 24: both spoke of "a strike" to someone who has none; "any" implies none.
        for said in (prompt["content"], deleted["content"]):
            assert "(any strike, the audit log) are kept" in said and "a strike" not in said, said

        again = await forget(env, env.alice, env.channel)
        assert "nothing" in again["content"].lower() and "Delete" not in again["content"], again["content"]
        assert again["components"] == [] and again["attachments"] == []
        assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.alice),)) == [(0,)]


@pytest.mark.parametrize("minutes, said", [(0.25, "15 s"), (5, "5 min"), (1.5, "1 min 30 s"), (90, "1 h 30 min"), (10080, "7 days")])
async def test_the_session_announcement_gives_a_round_s_length_in_plain_units(env, minutes, said):
    """Trial 24: "0.25 min per round" rather than "15 s"."""
    async with running(env):
        announced = (await compose(env, rounds=1, round_minutes=minutes))["data"]["content"]
    assert f", {said} per round. " in announced, announced


async def test_every_number_option_of_compose_and_config_takes_the_range_its_check_takes(env):
    """Found while fixing the round length: /compose and /config still wrote their other ranges
    (length, tempo, quorum, rounds) as numbers of their own; each comes from the constant its check uses."""
    from core.engine import QUORUM_MAX, ROUNDS_MAX
    from core.music import LENGTH_MAX, LENGTH_MIN, TEMPO_MAX, TEMPO_MIN

    ranges = {
        "compose": {"length": (LENGTH_MIN, LENGTH_MAX), "tempo": (TEMPO_MIN, TEMPO_MAX), "quorum": (1, QUORUM_MAX), "rounds": (0, ROUNDS_MAX)},
        "config": {"quorum": (0, QUORUM_MAX), "rounds": (0, ROUNDS_MAX)},
    }
    async with running(env):
        for command, options in ranges.items():
            declared = {o["name"]: o for o in env.server.command(command)["options"]}
            for name, (low, high) in options.items():
                assert (declared[name]["min_value"], declared[name]["max_value"]) == (low, high), (command, name)


@pytest.mark.parametrize("preset, unit, other", [("default", "judged edit", "Q-value"), ("context", "learned Q-value", "judged edit")])
async def test_forget_me_counts_what_a_personal_agent_learned_in_the_units_its_preset_learns(env, preset, unit, other):
    server = env.server
    dm = server.dm_channel(env.alice)
    async with running(env):
        await (await server.slash(env.alice, dm, "config", {"preset": preset})).wait_response()
        await compose(env, user=env.alice, channel=dm, rounds=3)
        for number in (1, 2):  # a session's first edit only sets the bar: the second is judged against it
            post = await server.wait_for_message(dm, is_round(number))
            await server.react(env.alice, post["id"], KEYCAPS[7 - number])
            await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == number, "the vote")
            await (await server.slash(env.alice, dm, "close")).wait_response()
            await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM rounds WHERE status = 'closed'")[0][0] == number, "the close")

        prompt = await forget(env, env.alice, dm)
        content = prompt["content"]
        assert "2 votes" in content and "your personal agent" in content and unit in content, content
        assert other not in content and " 0 " not in content, content
        # The copy holds the same count, in the same units, and what the agent has learned in words.
        [attachment] = prompt["attachments"]
        agent = json.loads(server.attachment_bytes(attachment))["personal_agent"]
        assert agent["preset"] == preset and f"your personal agent, which {agent['learned']}" in content, (agent, content)
        assert (set(agent) - {"scope", "preset", "learned", "lessons", "sessions"}) == {"judged_edits" if unit == "judged edit" else "q_values"}
        assert isinstance(agent["lessons"], list)
        # Its session goes with it: said before the question, listed in the copy (a trial: said only once deleted).
        assert len(agent["sessions"]) == 1 and "with its 1 session and its compositions. Delete it all?" in content, content


async def test_a_round_lasts_the_same_15_s_to_7_days_in_the_check_the_options_the_help_and_the_readme(env):
    low, high = ROUND_SECONDS_MIN / 60, ROUND_SECONDS_MAX / 60
    async with running(env):
        for command in ("compose", "config"):
            declared = next(o for o in env.server.command(command)["options"] if o["name"] == "round_minutes")
            assert (declared["min_value"], declared["max_value"]) == (low, high), command
            assert f"{low:g}" in declared["description"] and "7 days" in declared["description"], declared
    SessionSpec(round_seconds=ROUND_SECONDS_MIN)
    with pytest.raises(ValueError, match=f"{ROUND_SECONDS_MIN} s to 7 days"):
        SessionSpec(round_seconds=ROUND_SECONDS_MIN - 1)
    assert CommandSettings(_env_file=None, round_seconds=ROUND_SECONDS_MIN).round_seconds == ROUND_SECONDS_MIN
    assert f"from {ROUND_SECONDS_MIN} to " in expected("round_seconds")
    assert f"a round lasts {ROUND_SECONDS_MIN} s to 7 days" in " ".join(README.read_text().split())


@pytest.mark.parametrize("preset, unit, other", [("default", "judged edit", "Q-value"), ("context", "learned Q-value", "judged edit")])
async def test_reset_counts_what_the_agent_learned_in_the_units_its_preset_learns(env, preset, unit, other):
    server = env.server
    async with running(env):
        await config(env, preset=preset)
        await compose(env, rounds=3)
        for number in (1, 2):
            post = await server.wait_for_message(env.channel, is_round(number))
            await server.react(env.alice, post["id"], KEYCAPS[7 - number])
            await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == number, "the vote")
            await (await server.slash(env.mod, env.channel, "close")).wait_response()
            await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM rounds WHERE status = 'closed'")[0][0] == number, "the close")

        asked = await server.slash(env.mod, env.channel, "reset")
        prompt = await asked.wait_original()
        assert "Reset the agent?" in prompt["content"] and unit in prompt["content"], prompt["content"]
        assert other not in prompt["content"] and " 0 " not in prompt["content"], prompt["content"]
        button = next(c["custom_id"] for row in prompt["components"] for c in row["components"] if c["label"] == "Reset the agent")
        await (await server.press_button(env.mod, prompt["id"], button)).wait_response()
        done = (await asked.wait_original(lambda m: not m["components"]))["content"]
        assert done.startswith("The agent is reset") and "Q-value" not in done and " 0 " not in done, done


async def test_reset_of_an_agent_that_learned_nothing_says_so_and_asks_nothing(env):
    """A trial's prompt read "It has not learned anything yet; a reset forgets it all."; then (trial 24) it asked
    "Reset the agent? It has not learned anything yet." with buttons, where `crowdtune reset` says there is nothing to
    reset. It says so in one line, as the command line does, with no question."""
    async with running(env):
        asked = await env.server.slash(env.mod, env.channel, "reset")
        said = await asked.wait_original()
    assert said["content"] == "The agent has not learned anything yet: there is nothing to reset. Nothing was changed.", said["content"]
    assert said["components"] == []
    assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action = 'reset'") == [(0,)]


async def test_hide_results_says_what_it_does_with_the_vote_style_and_applies_at_once(env):
    """Found by a fresh-user trial: /config hide_results:true was taken with vote_style reactions without a word, while
    everyone sees the reaction counts on the post, and hide_results:false left an open round hidden (it applied to
    sessions started later only). /config now says in one line what it does with the vote style and when it applies,
    and /status follows it at once, as anti_brigade. A session no longer stores it (nothing read it); one stored
    before, with it in its options, still runs and follows the scope's setting."""
    from test_discord_bot import round_recorded

    async with running(env):
        hidden = await config(env, hide_results=True)
        assert "\n" not in hidden and hidden.count("hide_results") == 1, hidden
        assert "counts on the post" in hidden and "only buttons hide them" in hidden and "at once" in hidden, hidden
        await compose(env, rounds=3)
        (options,), = db_rows(env, "SELECT options FROM sessions")
        assert "hide_results" not in json.loads(options), options
        db_rows(env, "UPDATE sessions SET options = ?", (json.dumps({**json.loads(options), "hide_results": True}),))  # as stored before
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        await env.server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the vote")
        status = lambda: env.server.slash(env.bob, env.channel, "status")  # noqa: E731
        assert "1 voted so far," in (await (await status()).wait_response())["data"]["content"]
        shown = await config(env, hide_results=False)
        assert "hide_results: off" in shown and "at once" in shown, shown
        assert "1 voted so far (7)" in (await (await status()).wait_response())["data"]["content"]
        buttons = await config(env, hide_results=True, vote_style="buttons")
        assert "counts on the post" not in buttons and "hide_results: on" in buttons, buttons
    assert "`/config hide_results:on`" in README.read_text().split("### Rounds")[1], "the README says what hide_results does"


async def test_stats_after_a_forget_counts_the_same_votes_in_every_figure(env):
    """Found by a fresh-user trial: after /forget-me, /stats said "3 of 3 votes preferred an edit" above a list that
    still read "83% (3 votes)" and "75% (1 vote)", the vote counts stored with each round at its close. Every count
    /stats and /top show is of the votes stored now; a round's chance, decided at its close, says how many it had then."""
    server = env.server
    async with running(env):
        await compose(env, rounds=1, mode="ab")
        post = await server.wait_for_message(env.channel, is_round(1))
        for user, choice in ((env.alice, "🅰️"), (env.bob, "🅰️"), (env.carol, "👍")):  # A clearly: it stays, is listed
            await server.react(user, post["id"], choice)
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 3, "three A/B votes")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("finished",)], "the session to finish")
        assert "Deleted 1 vote" in (await forget(env, env.alice, env.channel, press="Delete my data"))["content"]
        answers = [
            (await (await server.slash(env.bob, env.channel, name)).wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=60))["content"]
            for name in ("stats", "top")
        ]
    assert "2 of 2 votes preferred an edit to the track before" in answers[0], answers[0]
    for shown in answers:
        [listed] = [line for line in shown.splitlines() if "beat the track before: " in line]
        assert "(2 votes; 3 when it closed)" in listed and "(3 votes)" not in listed, listed
