"""What a listener hears and sees on Discord, through the real bot and the local Discord-compatible
server: the clip's level, the instrument, a session started from an attached MIDI file."""

from __future__ import annotations

import json

import pytest
from test_discord_bot import compose, db_rows, drawer, env, is_round, renderer, running  # noqa: F401 - fixtures
from test_fitting import MELODY, a_minor_snapped, song
from test_loudness import assert_listening_level, ogg_samples

from core.midi import midi_bytes
from core.music import degree_to_pitch

pytestmark = pytest.mark.asyncio


def round_ogg(env, post) -> bytes:
    return env.server.attachment_bytes(next(a for a in post["attachments"] if a["filename"].endswith(".ogg")))


async def test_a_round_is_played_on_the_chosen_instrument_at_the_listening_level(env):
    async with running(env):
        response = await compose(env, rounds=2, instrument="violin")
        assert "on Violin" in response["data"]["content"]
        post = await env.server.wait_for_message(env.channel, is_round(1))
        assert post["content"].startswith("**Round 1 of 2** (Violin)")
        assert_listening_level(*ogg_samples(round_ogg(env, post)))
    [(spec,)] = db_rows(env, "SELECT spec FROM sessions")
    assert json.loads(spec)["instrument"] == 40


async def test_an_unknown_instrument_is_a_polite_refusal_and_nothing_starts(env):
    async with running(env):
        reply = await compose(env, instrument="kazoo")
        assert reply["data"]["flags"] & 64 and "Sorry" in reply["data"]["content"] and "kazoo" in reply["data"]["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0


async def test_a_session_from_an_attached_midi_file_plays_that_melody_first(env):
    async with running(env):
        response = await compose(env, rounds=2, melody=("song.mid", midi_bytes(song())))
        content = response["data"]["content"]
        assert "from your melody (kept 19 notes of track 2 (Lead) in A minor at 90 bpm" in content and "on Flute" in content
        await env.server.wait_for_message(env.channel, is_round(1))
    [(plan,)] = db_rows(env, "SELECT plan FROM rounds WHERE idx = 0")
    incumbent = json.loads(plan)["incumbent"]
    pitches = [degree_to_pitch(incumbent["base"], incumbent["scale"], degree) for degree, *_ in incumbent["notes"]]
    assert pitches == a_minor_snapped([p for p, _ in MELODY])


@pytest.mark.parametrize(
    "options, says",
    [
        ({"melody": ("evil.mid", b"MThd\x00\x00\x00\x06\x00\x01\xff\xff\x01\xe0")}, "evil.mid"),
        ({"melody": ("drums.mid", b"not midi")}, "not a valid MIDI file"),
        ({"melody_track": 2}, "melody_track names a track"),
        ({"melody": ("song.mid", midi_bytes(song())), "melody_track": 9}, "track 9 has no melody"),
    ],
)
async def test_a_bad_melody_file_is_one_polite_line_and_nothing_is_created(env, options, says):
    async with running(env):
        reply = await compose(env, **options)
        content = reply["data"]["content"]
        assert reply["data"]["flags"] & 64 and content.startswith("Sorry") and says in content and "\n" not in content
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0
