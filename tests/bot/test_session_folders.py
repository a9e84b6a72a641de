"""A terminal session keeps the folder it was given (bot.session_files): as real `crowdtune run` processes on real
SQLite find it after the database is moved with its folder, renamed or copied, or moved alone, and what they say when
it is not found."""

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

from test_cli import crowdtune
from test_terminal import files_folder, stored_options


def _started(tmp_path: Path, db: str, *args: str) -> Path:
    """Start a session of 4 rounds on `db` (under tmp_path), rate one round and stop; returns its folder."""
    first = crowdtune("run", "--rounds", "4", "--no-audio", "--db", db, *args, stdin="5\nq\n", cwd=tmp_path)
    folder = files_folder(first.stdout)
    assert (folder / "round-0001.mid").is_file() and (folder / "final.mid").is_file(), first.stdout
    return folder


def _resumed(tmp_path: Path, db: str) -> subprocess.CompletedProcess:
    return crowdtune("run", "--no-audio", "--db", db, stdin="5\nq\n", cwd=tmp_path)


def _as_kept_before(db: Path, out: Path) -> None:
    """Store session 1's folder as the version before kept it: the absolute folder its folder is in, no name."""
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE sessions SET options = ? WHERE id = 1", (json.dumps({"aspects": False, "out": str(out)}),))


def test_an_old_absolute_folder_moved_with_its_database_is_found_beside_it_and_a_gone_one_is_not_made_again(tmp_path):
    """Found by a trial: a session stored with an absolute folder (before 2904d13), its database and folder copied
    elsewhere (cp -a d1 r) and resumed there, kept writing into d1's folder; with d1 deleted, it made
    d1/rounds/ct-session-... again with all its parents, saying nothing."""
    (tmp_path / "d1").mkdir()
    first = _started(tmp_path, "d1/ct.db")
    _as_kept_before(tmp_path / "d1" / "ct.db", tmp_path / "d1" / "rounds")
    shutil.copytree(tmp_path / "d1", tmp_path / "r", symlinks=True)
    moved = _resumed(tmp_path, "r/ct.db")
    folder = tmp_path / "r" / "rounds" / first.name
    assert files_folder(moved.stdout) == folder and (folder / "round-0003.mid").is_file(), moved.stdout
    assert not (first / "round-0003.mid").exists()  # d1's is left as it was
    assert "is not there" not in moved.stdout, moved.stdout
    # d1 deleted, and a database whose old folder is found nowhere: the files go to this run's folder, said in a line.
    shutil.rmtree(tmp_path / "d1")
    (tmp_path / "alone").mkdir()
    shutil.copy(tmp_path / "r" / "ct.db", tmp_path / "alone" / "ct.db")
    _as_kept_before(tmp_path / "alone" / "ct.db", tmp_path / "d1" / "rounds")
    gone = _resumed(tmp_path, "alone/ct.db")
    assert not (tmp_path / "d1").exists(), gone.stdout
    instead = tmp_path / "alone" / "rounds" / first.name
    assert files_folder(gone.stdout) == instead and (instead / "round-0004.mid").is_file(), gone.stdout
    said = [line for line in gone.stdout.splitlines() if "is not there" in line]
    assert said == [f"session 1's folder {first} is not there (moved or deleted?): its files go to {instead} instead"], gone.stdout
    # Its new place is kept: the next run writes there and says nothing of the gone one (a trial heard it every run).
    again = _resumed(tmp_path, "alone/ct.db")
    assert files_folder(again.stdout) == instead and "is not there" not in again.stdout, again.stdout
    assert stored_options(tmp_path / "alone" / "ct.db", 1) == {"aspects": False, "out": "rounds", "named": "ct"}


def test_a_renamed_or_copied_database_keeps_its_session_s_folder_and_one_moved_alone_says_where_files_go(tmp_path):
    """Found by a trial: a session's folder's name was made from the database's name now, so a database renamed or
    copied into another name (cp n2/ct.db n2/renamed.db) wrote its resumed session into a new folder, its final.mid
    apart from its earlier rounds; one moved alone started a fresh folder and said nothing."""
    (tmp_path / "n2").mkdir()
    first = _started(tmp_path, "n2/ct.db")
    assert stored_options(tmp_path / "n2" / "ct.db", 1)["named"] == "ct"
    shutil.copy(tmp_path / "n2" / "ct.db", tmp_path / "n2" / "renamed.db")
    renamed = _resumed(tmp_path, "n2/renamed.db")
    assert files_folder(renamed.stdout) == first and (first / "round-0003.mid").is_file(), renamed.stdout
    assert not list((tmp_path / "n2" / "rounds").glob("renamed-*")), renamed.stdout
    assert "is not there" not in renamed.stdout, renamed.stdout
    # Moved alone: its folder is not beside it; one line says so and where the files go, which is then used.
    (tmp_path / "n3").mkdir()
    shutil.move(tmp_path / "n2" / "renamed.db", tmp_path / "n3" / "renamed.db")
    alone = _resumed(tmp_path, "n3/renamed.db")
    instead = tmp_path / "n3" / "rounds" / first.name
    said = [line for line in alone.stdout.splitlines() if "is not there" in line]
    assert said == [f"session 1's folder {instead} is not there (moved or deleted?): it is made again for its files"], alone.stdout
    assert files_folder(alone.stdout) == instead and (instead / "round-0004.mid").is_file(), alone.stdout
    again = _resumed(tmp_path, "n3/renamed.db")
    assert files_folder(again.stdout) == instead, again.stdout
    assert "is not there" not in again.stdout, again.stdout


def test_on_postgresql_a_session_keeps_its_folder_whatever_url_reaches_the_database(tmp_path, postgres_server):
    """Found by a trial: on PostgreSQL a session's folder was named from the URL as typed now, so the same database
    reached by another URL (a parameter added) resumed its session into a new folder, apart from its rounds."""
    url = postgres_server.new_database()
    first = crowdtune("run", "--rounds", "4", "--no-audio", "--db", url, stdin="5\nq\n", cwd=tmp_path)
    folder = files_folder(first.stdout)
    other = crowdtune("run", "--no-audio", "--db", url + "?application_name=elsewhere", stdin="5\nq\n", cwd=tmp_path)
    assert files_folder(other.stdout) == folder and (folder / "round-0003.mid").is_file(), other.stdout
    assert [p.name for p in folder.parent.iterdir()] == [folder.name] and "is not there" not in other.stdout, other.stdout
    # Its folder deleted: its files go to this run's --out, said once, as that new place is kept (on PostgreSQL too).
    shutil.rmtree(folder)
    (tmp_path / "o2").mkdir()
    said = [crowdtune("run", "--no-audio", "--db", url, *out, stdin="5\nq\n", cwd=tmp_path).stdout for out in (["--out", "o2"], [])]
    assert [run.count("is not there") for run in said] == [1, 0], said
    assert files_folder(said[1]) == tmp_path / "o2" / folder.name and not folder.exists(), said


def test_a_session_s_folder_is_the_same_in_every_time_zone_and_an_older_one_made_in_another_is_found(tmp_path):
    """Found by a trial: a folder's name carried when its session started in the local time of each run, so a
    database with its folder copied to a machine in another time zone (TZ=America/New_York, then Asia/Tokyo) no
    longer found it, and a run with its --out made a second folder for the same session."""
    (tmp_path / "z").mkdir()
    new_york, tokyo = {"TZ": "America/New_York"}, {"TZ": "Asia/Tokyo"}
    first = crowdtune("run", "--rounds", "6", "--no-audio", "--db", "z/ct.db", stdin="5\nq\n", cwd=tmp_path, env_extra=new_york)
    folder = files_folder(first.stdout)
    for zone in (tokyo, {"TZ": "UTC"}):
        again = crowdtune("run", "--no-audio", "--db", "z/ct.db", stdin="5\nq\n", cwd=tmp_path, env_extra=zone)
        assert files_folder(again.stdout) == folder and "is not there" not in again.stdout, again.stdout
    assert sorted(p.name for p in folder.glob("round-*.mid")) == [f"round-000{n}.mid" for n in (1, 2, 3, 4)]
    # A session kept before its folder's name was (named then in the local time of the run that made it): found from
    # another time zone by the time its name carries, whatever the zone.
    _as_kept_before(tmp_path / "z" / "ct.db", tmp_path / "z" / "rounds")
    with sqlite3.connect(tmp_path / "z" / "ct.db") as raw:
        raw.execute("UPDATE sessions SET options = json_set(options, '$.out', ?) WHERE id = 1", (str(folder.parent),))
    older = crowdtune("run", "--no-audio", "--db", "z/ct.db", stdin="5\nq\n", cwd=tmp_path, env_extra=tokyo)
    assert files_folder(older.stdout) == folder and (folder / "round-0005.mid").is_file(), older.stdout
    assert "is not there" not in older.stdout, older.stdout


def test_a_resumed_session_names_an_out_it_cannot_use_as_not_applied_and_a_new_one_is_refused_it(tmp_path):
    """Found by a trial: a resumed session given --out whose parent folder does not exist was refused (exit code 12),
    while any other --out it does not apply is named as not applied: the session keeps its own folder."""
    (tmp_path / "d").mkdir()
    first = _started(tmp_path, "d/ct.db")
    resumed = crowdtune("run", "--no-audio", "--db", "d/ct.db", "--out", "typo/x", stdin="5\nq\n", cwd=tmp_path)
    assert f"  --out typo/x not applied: this session keeps its files in {first}" in resumed.stdout, resumed.stdout
    assert (first / "round-0003.mid").is_file() and not (tmp_path / "typo").exists(), resumed.stdout
    # A session that would write there is refused it, before anything is stored: a new one (--new ends the open one,
    # so it is refused at once), and a resumed one whose own folder is gone, whose files would go to --out.
    rounds = sqlite3.connect(tmp_path / "d" / "ct.db").execute("SELECT COUNT(*) FROM rounds").fetchone()
    new = crowdtune("run", "--new", "--no-audio", "--db", "d/ct.db", "--out", "typo/x", stdin="5\nq\n", cwd=tmp_path, check=False)
    assert new.returncode == 12 and "typo" in new.stderr and new.stdout == "", (new.stdout, new.stderr)
    shutil.rmtree(first)
    gone = crowdtune("run", "--no-audio", "--db", "d/ct.db", "--out", "typo/x", stdin="5\nq\n", cwd=tmp_path, check=False)
    assert gone.returncode == 12 and "typo" in gone.stderr, (gone.stdout, gone.stderr)
    assert sqlite3.connect(tmp_path / "d" / "ct.db").execute("SELECT COUNT(*) FROM rounds").fetchone() == rounds
    assert stored_options(tmp_path / "d" / "ct.db", 1)["out"] == "rounds" and not (tmp_path / "typo").exists()
