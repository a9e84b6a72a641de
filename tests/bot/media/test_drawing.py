"""Pictures drawn in the drawing process: the same bytes as drawn in place, a new worker after one dies,
and no worker left behind when the bot is killed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.media.drawing import Drawer
from bot.media.pianoroll import learning_curve_png, piano_roll_png
from core.music import generate_track

TRACK = generate_track(60, "major", 8, 120, random.Random(1))


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init, which may not reap it in a container)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_until_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not running(pid)


@pytest.fixture(scope="module")
def drawer():
    shared = Drawer()
    yield shared
    shared.close()


async def test_pictures_from_the_drawing_process_are_those_drawn_in_place(drawer):
    assert await drawer.piano_roll(TRACK, "round 1") == piano_roll_png(TRACK, "round 1")
    assert await drawer.learning_curve([5.0, 6.5, 7.0], "curve") == learning_curve_png([5.0, 6.5, 7.0], "curve")
    assert drawer.worker_pids() and os.getpid() not in drawer.worker_pids()


async def test_a_dead_worker_fails_one_picture_and_the_next_gets_a_new_worker(drawer):
    await drawer.piano_roll(TRACK)
    (first,) = drawer.worker_pids()
    os.kill(first, signal.SIGKILL)
    assert wait_until_gone(first)
    with pytest.raises(Exception):
        await drawer.piano_roll(TRACK)
    assert await drawer.piano_roll(TRACK) == piano_roll_png(TRACK)
    assert drawer.worker_pids() and first not in drawer.worker_pids()


def test_the_drawing_process_exits_when_the_bot_process_is_killed():
    script = (
        "import asyncio, random\n"
        "from bot.media.drawing import Drawer\n"
        "from core.music import generate_track\n"
        "async def main():\n"
        "    drawer = Drawer()\n"
        "    await drawer.piano_roll(generate_track(60, 'major', 8, 120, random.Random(1)))\n"
        "    print(drawer.worker_pids()[0], flush=True)\n"
        "    await asyncio.sleep(120)\n"
        "asyncio.run(main())\n"
    )
    bot = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(bot.stdout.readline())
        assert running(worker)
    finally:
        bot.kill()
        bot.wait()
        bot.stdout.close()
    assert wait_until_gone(worker), "the drawing process outlived the killed bot"
