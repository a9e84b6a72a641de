"""What a listener hears and sees on Discord, through the real bot and the local Discord-compatible
server: the clip's level, the instrument, a session started from an attached MIDI file."""

from __future__ import annotations

import json

import pytest
from test_discord_bot import compose, db_rows, drawer, env, final_answer, is_round, renderer, running  # noqa: F401 - fixtures
from test_fitting import MELODY, a_minor_snapped, song
from test_loudness import assert_listening_level, ogg_samples

from bot.discord.cogs import sessions
from bot.media.midi_import import MAX_FILE_BYTES
from core.crowd import rating_text
from core.midi import midi_bytes
from core.music import degree_to_pitch
from fakediscord.rest import CDN_ROUTE

pytestmark = pytest.mark.asyncio


def round_ogg(env, post) -> bytes:
    return env.server.attachment_bytes(next(a for a in post["attachments"] if a["filename"].endswith(".ogg")))


async def test_a_round_is_played_on_the_chosen_instrument_at_the_listening_level(env):
    async with running(env):
        response = await compose(env, rounds=2, instrument="violin")
        assert "on Violin" in response["data"]["content"]
        post = await env.server.wait_for_message(env.channel, is_round(1))
        assert post["content"].startswith("**Round 1 of 2**: ") and "(melody on Violin)" in post["content"]
        assert_listening_level(*ogg_samples(round_ogg(env, post)))
    [(spec,)] = db_rows(env, "SELECT spec FROM sessions")
    assert json.loads(spec)["instrument"] == 40


@pytest.mark.parametrize("instrument, says", [("kazoo", "'kazoo' is not a General MIDI instrument"), ("drums", "'drums': the drum kit ")])
async def test_an_unknown_instrument_is_a_polite_refusal_and_nothing_starts(env, instrument, says):
    """The drum kit (`drums`) is refused as on the command line (core.instruments.parse_instrument), not Steel Drums."""
    async with running(env):
        reply = await compose(env, instrument=instrument)
        assert reply["data"]["flags"] & 64 and "Sorry" in reply["data"]["content"] and says in reply["data"]["content"], reply
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0


async def test_a_session_from_an_attached_midi_file_plays_that_melody_first(env):
    async with running(env):
        asked = await env.server.slash(env.mod, env.channel, "compose", {"rounds": 2, "melody": ("song.mid", midi_bytes(song()))})
        # Acknowledged privately before the download (errors stay private); the session is announced to the channel.
        assert (await asked.wait_response())["type"] == 5 and asked.ephemeral
        [announcement] = await asked.wait_followups()
        content = announcement["content"]
        assert "from your melody (kept 19 notes of track 2 (Lead) in A minor at 90 bpm" in content and "on Flute" in content
        assert not announcement["flags"] & 64
        assert "song.mid" in (await asked.wait_original())["content"]
        await env.server.wait_for_message(env.channel, is_round(1))
        assert env.server.request_counts[CDN_ROUTE] == 1 and not env.server.missed_deadlines
        again = await env.server.slash(env.alice, env.channel, "compose", {"melody": ("song.mid", midi_bytes(song()))})
        refused = await final_answer(again)  # known only once the melody is read: still private, one line
        assert refused["flags"] & 64 and refused["content"].startswith("Sorry") and "/stop" in refused["content"]
        assert not again.followups
    [(plan,)] = db_rows(env, "SELECT plan FROM rounds WHERE idx = 0")
    incumbent = json.loads(plan)["incumbent"]
    pitches = [degree_to_pitch(incumbent["base"], incumbent["scale"], degree) for degree, *_ in incumbent["notes"]]
    assert pitches == a_minor_snapped([p for p, _ in MELODY])


async def test_a_melody_that_downloads_slowly_is_acknowledged_within_discords_deadline(env):
    server = env.server
    async with running(env):
        server.hold_downloads()  # a slow CDN or a large file: the download ends when the test says
        asked = await server.slash(env.mod, env.channel, "compose", {"rounds": 2, "melody": ("song.mid", midi_bytes(song()))})
        # Either the bot acknowledges while its download is still under way, or Discord's 3 s pass first.
        await server.wait_until(lambda: asked.missed_deadline or (asked.callbacks and server.downloads_waiting), what="an answer")
        server.release_downloads()
        assert not server.missed_deadlines, "the bot read the attachment before answering the interaction"
        [announcement] = await asked.wait_followups()
        assert "from your melody (kept 19 notes" in announcement["content"]
        await server.wait_for_message(env.channel, is_round(1))
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 1


async def test_a_session_whose_announcement_fails_still_runs_and_is_not_called_unchanged(env):
    server = env.server
    async with running(env):
        server.fail("POST /webhooks/{webhook_id}/{webhook_token}", status=400, code=50035, message="Invalid Form Body")
        asked = await server.slash(env.mod, env.channel, "compose", {"rounds": 2, "melody": ("song.mid", midi_bytes(song()))})
        await server.wait_for_message(env.channel, is_round(1))  # started, so it runs
        assert "song.mid" in (await asked.wait_original())["content"] and not asked.followups
        assert "Nothing was changed" not in asked.original["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 1


SONG = ("song.mid", midi_bytes(song()))


@pytest.mark.parametrize(
    "options, says, downloads",
    [
        ({"melody": ("evil.mid", b"MThd\x00\x00\x00\x06\x00\x01\xff\xff\x01\xe0")}, "evil.mid", 1),
        ({"melody": ("drums.mid", b"not midi")}, "not a valid MIDI file", 1),
        ({"melody_track": 2}, "melody_track names a track", 0),
        ({"melody": SONG, "melody_track": 9}, "no track 9: the file has 4 tracks", 1),
        # Whatever can be checked without the file is checked before it is downloaded.
        ({"melody": ("big.mid", b"MThd" + bytes(MAX_FILE_BYTES))}, "a melody file may be at most 1024 KiB", 0),
        ({"melody": SONG, "aspects": True, "mode": "ab"}, "rate 1-10 mode", 0),
        ({"melody": SONG, "instrument": "kazoo"}, "kazoo", 0),
    ],
    ids=["bad-header", "not-midi", "no-file", "no-such-track", "too-big", "aspects-ab", "instrument"],
)
async def test_a_bad_melody_file_is_one_polite_line_and_nothing_is_created(env, options, says, downloads):
    async with running(env):
        asked = await env.server.slash(env.mod, env.channel, "compose", options)
        shown = await final_answer(asked)
        content = shown["content"]
        assert shown["flags"] & 64 and content.startswith("Sorry") and says in content and "\n" not in content
        assert not asked.followups and env.server.request_counts[CDN_ROUTE] == downloads
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"not a midi file at all", "it does not start with a MIDI header, so it is some other kind of file"),
        # A key signature of 32 sharps: mido's "Could not decode key with 32 sharps and mode 0".
        (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x08\x00\xff\x59\x02\x20\x00\x00\xff\x2f\x00", "some of its contents are not valid MIDI data"),
    ],
    ids=["not-midi", "damaged"],
)
async def test_a_file_that_is_no_midi_is_said_in_our_words_not_the_midi_library_s(env, data, reason):
    """Trial 24: a melody file that was no MIDI was answered "(MThd not found. Probably not a MIDI file)", mido's text."""
    async with running(env):
        shown = await final_answer(await env.server.slash(env.mod, env.channel, "compose", {"melody": ("tune.mid", data)}))
    assert shown["content"] == f"Sorry, I can't start that: tune.mid is not a valid MIDI file ({reason}).", shown["content"]


@pytest.mark.parametrize("failure", ["cdn-error", "timeout"])
async def test_a_melody_that_cannot_be_downloaded_is_one_polite_line(env, monkeypatch, failure):
    server = env.server
    if failure == "timeout":
        monkeypatch.setattr(sessions, "MELODY_DOWNLOAD_SECONDS", 0.2)
        server.hold_downloads()  # never released: the CDN does not answer
    else:
        server.fail(CDN_ROUTE, status=500, message="500: Internal Server Error")
    async with running(env):
        asked = await server.slash(env.mod, env.channel, "compose", {"melody": SONG})
        shown = await final_answer(asked)
        content = shown["content"]
        assert shown["flags"] & 64 and content.startswith("Sorry") and "song.mid could not be downloaded" in content
        assert "\n" not in content and not asked.followups and not server.missed_deadlines
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0


def component(post, suffix: str) -> dict:
    return next(c for row in post["components"] for c in row["components"] if c["custom_id"].endswith(f":{suffix}"))


async def pick(env, user, post, aspect: str, rating: int) -> str:
    chosen = await env.server.select(user, post["id"], component(post, aspect)["custom_id"], [str(rating)])
    reply = await chosen.wait_response()
    assert reply["data"]["flags"] & 64
    return reply["data"]["content"]


async def test_a_three_aspect_session_asks_each_aspect_apart_and_votes_their_compound(env):
    async with running(env):
        response = await compose(env, rounds=2, aspects=True)
        assert "musicality, novelty and coherence 1-10" in response["data"]["content"]
        post = await env.server.wait_for_message(env.channel, is_round(1))
        assert "musicality, novelty and coherence" in post["content"]
        # One compact control per aspect (a select menu each) and Withdraw: 4 of Discord's 5 rows, no reactions.
        assert [[c["type"] for c in row["components"]] for row in post["components"]] == [[3], [3], [3], [2]]
        assert [o["value"] for o in component(post, "novelty")["options"]] == [str(n) for n in range(1, 11)]
        assert not env.server.message(post["id"])["reactions"]

        assert "Your musicality: 8. Your vote counts 8" in await pick(env, env.alice, post, "musicality", 8)
        merged = await pick(env, env.alice, post, "novelty", 5)  # any aspect, any time: merged with the others
        assert "Your vote counts 7 (musicality 8, novelty 5" in merged
        await pick(env, env.bob, post, "coherence", 6)
        await pick(env, env.bob, post, "novelty", 4)
        await pick(env, env.carol, post, "coherence", 2)
        withdrawn = await (await env.server.press_button(env.carol, post["id"], component(post, "x")["custom_id"])).wait_response()
        assert "withdrawn" in withdrawn["data"]["content"]
        await env.server.react(env.carol, post["id"], "7️⃣")  # a reaction is not a vote in a three-aspect round

        status = await (await env.server.slash(env.alice, env.channel, "status")).wait_response()
        assert "2 voted so far" in status["data"]["content"]
        assert "per aspect: musicality 8 (1), novelty 4.5 (2), coherence 6 (1)" in status["data"]["content"]

        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await env.server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"])
        assert "2 voted" in summary["content"]
        stats = await env.server.slash(env.mod, env.channel, "stats")  # /stats edits its deferred answer (issue 12)
        shown = await stats.wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=60)
        assert "Mean per aspect (votes): musicality 8 (1), novelty 4.5 (2), coherence 6 (1)" in shown["content"]

        exported = await env.server.slash(env.mod, env.channel, "export")  # made in a worker; the answer is edited
        done = await exported.wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=60)
        archive_bytes = env.server.attachment_bytes(done["attachments"][0])

    # The vote is the compound (core.crowd.compound_rating: musicality counts twice), each aspect is kept.
    rows = dict(db_rows(env, "SELECT voter, rating FROM votes WHERE retracted = 0"))
    assert rows == {f"user:{env.alice.id}": 7.0, f"user:{env.bob.id}": 5.0}
    [(reward,)] = db_rows(env, "SELECT reward FROM rounds WHERE idx = 0")
    assert 5.0 <= reward <= 7.0  # the crowd's verdict from the two compounds
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        votes = {v["voter"]: v for v in map(json.loads, archive.read("votes.jsonl").splitlines())}
    assert votes[f"user:{env.alice.id}"]["aspects"] == {"musicality": 8.0, "novelty": 5.0}
    assert votes[f"user:{env.bob.id}"]["aspects"] == {"coherence": 6.0, "novelty": 4.0}


async def test_three_aspects_with_ab_mode_is_a_polite_refusal(env):
    async with running(env):
        reply = await compose(env, aspects=True, mode="ab")
        assert reply["data"]["flags"] & 64 and "rate 1-10 mode" in reply["data"]["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0


async def test_the_instrument_option_autocompletes_general_midi_names(env):
    async with running(env):
        typing = await env.server.autocomplete(env.alice, env.channel, "compose", {"instrument": "sax"}, focused="instrument")
        answer = await typing.wait_response()
        assert answer["type"] == 8
        # `sax` alone plays Alto Sax (README "Instruments"), so it is offered first.
        assert [c["name"] for c in answer["data"]["choices"]] == ["Alto Sax", "Soprano Sax", "Tenor Sax", "Baritone Sax"]
        empty = await (await env.server.autocomplete(env.alice, env.channel, "compose", {}, focused="instrument")).wait_response()
        assert len(empty["data"]["choices"]) == 25  # Discord shows at most 25
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0  # typing starts nothing


async def test_stats_and_top_show_ab_rounds_apart_from_ratings_never_out_of_10(env):
    """An A/B round's reward is its edit's chance of beating the track before (1 + 9 x it), not a 1-10 rating:
    /stats and /top rank and average rated rounds alone and show A/B rounds as the chance they are."""
    from test_discord_bot import KEYCAPS, eventually

    from core.engine import chance_text

    server = env.server
    async with running(env):
        await compose(env, rounds=1)
        rated = await server.wait_for_message(env.channel, is_round(1))
        await server.react(env.alice, rated["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "a rating")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("finished",)], "the rated session to finish")
        await compose(env, rounds=1, mode="ab")
        ab = await server.wait_for_message(env.channel, lambda m: is_round(1)(m) and m["id"] != rated["id"])
        for user, choice in ((env.alice, "🅰️"), (env.bob, "🅰️"), (env.carol, "👍")):  # A clearly: it stays, /top lists it
            await server.react(user, ab["id"], choice)
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 4, "three A/B votes")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM sessions WHERE status = 'finished'")[0][0] == 2, "both sessions")
        stats = await (await server.slash(env.bob, env.channel, "stats")).wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=60)
        top = await (await server.slash(env.bob, env.channel, "top")).wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=60)
    (rating, _), (chance, _) = db_rows(env, "SELECT reward, mode FROM rounds ORDER BY id")
    first_started = db_rows(env, "SELECT created_at FROM sessions ORDER BY id")[0][0]
    where = f"round 1 of the session started <t:{int(first_started)}:f> in <#{env.channel.id}>"
    for shown in (stats["content"], top["content"]):
        assert f"{chance:.1f}/10" not in shown and f"beat the track before: {chance_text(chance)} (3 votes)" in shown, shown
        assert [line for line in shown.splitlines() if "/10" in line] == [f"1. {rating_text(rating)}/10: {where}"], shown
    assert stats["content"].startswith(f"1 rated round, mean reward {rating_text(rating)} (each round's verdict when it closed, which stands).")  # the rating alone, not the A/B chance
    assert "1 A/B round: its edit kept; 3 of 3 votes preferred an edit to the track before" in stats["content"]
    assert len(top["attachments"]) == 2 and len(stats["attachments"]) == 2  # a rated curve and an A/B chart
