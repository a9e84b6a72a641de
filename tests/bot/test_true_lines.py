"""Lines that said more than was so, found by a fresh-user trial: each now says only what is."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from test_cli import CROWDTUNE, crowdtune


def test_a_simulation_stopped_before_any_round_names_only_the_files_it_wrote(tmp_path):
    """`simulate` stopped by Ctrl-C before its first round closed said "wrote rs/results.json, ..., final.mid and round
    MIDI files" with no round file there. The line names what is in --out (a new or empty folder at the start)."""
    (tmp_path / "slow.py").write_text(
        "import pathlib, time\n"
        "def rate(midi):\n"
        "    pathlib.Path('rating').touch()\n"
        "    time.sleep(5)  # Ctrl-C comes meanwhile: no round closes\n"
        "    return 5\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    process = subprocess.Popen([CROWDTUNE, "simulate", "--rounds", "3", "--rater", "slow.py:rate", "--out", "rs", "--db", "ct.db"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until the first rating has begun (a bound against a hang, not a time assertion)
            if (tmp_path / "rating").exists():
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and err == "interrupted\n", err
    written = sorted(path.name for path in (tmp_path / "rs").iterdir())
    assert not any(name.startswith("round-") for name in written), written
    said = re.search(r"^stopped after 0 of 3 rounds: interrupted \(.*\); wrote (.*)$", out, re.M)
    assert said and said.group(1) == "rs/results.json, learning-curve.png, start.mid and final.mid", out


def test_sessions_shows_its_times_in_utc_as_the_session_folders_name_them(tmp_path):
    """`sessions` showed local time with no zone while the sessions' folders are named in UTC: away from UTC the two
    disagreed with nothing to say why. It says UTC, the folder's time to the minute."""
    zone = {"TZ": "Asia/Tokyo"}  # UTC+9 all year
    crowdtune("run", "--rounds", "1", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path, env_extra=zone)
    [folder] = (tmp_path / "rounds").iterdir()
    stamp = re.fullmatch(r"ct-session-1-(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)\d\d", folder.name).groups()
    listed = crowdtune("sessions", "--db", "ct.db", cwd=tmp_path, env_extra=zone).stdout
    assert "   1  active    {}-{}-{} {}:{} UTC  local:".format(*stamp) in listed, (folder.name, listed)
