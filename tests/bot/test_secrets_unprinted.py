"""README: "Secrets never reach logs, exports or error messages". Every command that names a database, run as a
person runs it on a real PostgreSQL database whose URL carries its password (as the URL's password, percent-encoded,
and as a password= parameter), given by --db and by .env; and the bot given an API base that carries a user and
password. A trial found `crowdtune upgrade` printing the URL whole, and `crowdtune run` its API base's password."""

import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from bot.errors import ExitCode
from dbrows import as_of_schema
from test_cli import crowdtune

PASSWORD = "s3cr#tPassw0rd"  # the trial's, whose # a URL carries percent-encoded
ENCODED = PASSWORD.replace("#", "%23")
FORMS = (PASSWORD, ENCODED)


def _trial_database(server) -> tuple[str, str]:
    """A new database owned by a role of its own whose password is PASSWORD: its URL with the password as the URL's
    and with it as a password= parameter."""
    url = server.new_database()
    name = url.rsplit("/", 1)[1]
    role = f"trial_{name}"
    server.psql(url, f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    server.psql(url, f"ALTER DATABASE {name} OWNER TO {role}")
    where = f"127.0.0.1:{server.port}/{name}"
    return f"postgresql://{role}:{ENCODED}@{where}", f"postgresql://{role}@{where}?password={ENCODED}"


def _printed(result) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize("given", ["--db", ".env"])
@pytest.mark.parametrize("form", ["password", "password="])
def test_no_command_prints_the_database_password(postgres_server, tmp_path, given, form):
    """What each command says about the database (done, nothing to do, refused) names it without its password."""
    url = dict(zip(["password", "password="], _trial_database(postgres_server)))[form]
    db = ["--db", url] if given == "--db" else []
    if given == ".env":
        (tmp_path / ".env").write_text(f"CROWDTUNE_DB={url}\n")
    said = [crowdtune("simulate", "--rounds", "2", "--out", "sim", *db, cwd=tmp_path)]
    as_of_schema(url, 12)
    upgraded = crowdtune("upgrade", *db, cwd=tmp_path)
    assert "upgraded the database postgresql://" in upgraded.stdout, upgraded.stdout
    already = crowdtune("upgrade", *db, cwd=tmp_path)
    assert "is already of this crowdtune's schema" in already.stdout, already.stdout
    said += [upgraded, already, crowdtune("sessions", *db, cwd=tmp_path), crowdtune("export", "--out", "all.zip", *db, cwd=tmp_path),
             crowdtune("copy-db", "--from", url, "--to", "copy.db", cwd=tmp_path),
             crowdtune("run", "--rounds", "1", "--no-audio", *db, stdin="5\n", cwd=tmp_path)]
    refused = crowdtune("reset", "--scope", "guild:1", "--yes", *db, cwd=tmp_path, check=False)
    nothing = crowdtune("forget-user", "123456789012345678", "--yes", *db, cwd=tmp_path)
    assert refused.returncode == ExitCode.USAGE and "no scope 'guild:1' in postgresql://" in refused.stderr, refused.stderr
    assert "nothing of user:123456789012345678 is stored in postgresql://" in nothing.stdout, nothing.stdout
    for result in [*said, refused, nothing]:
        assert result.args and not any(secret in _printed(result) for secret in FORMS), _printed(result)
        assert "***" in _printed(result) or "postgresql://" not in _printed(result), _printed(result)
    with zipfile.ZipFile(tmp_path / "all.zip") as export:
        assert not any(secret.encode() in export.read(name) for name in export.namelist() for secret in FORMS)


@pytest.fixture
def not_discord():
    """A web server that is no Discord API (every path: 404), as `python3 -m http.server` is; its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join()
    server.server_close()


BOT = {"DISCORD_TOKEN": "MTIz.fake-token.value", "CROWDTUNE_CONNECT_RETRY_SECONDS": "1"}


def test_an_api_base_with_a_password_is_refused_in_one_line_without_it(not_discord, tmp_path):
    """The trial's: an API base with a user and password (a proxy's) that answers 404 was refused as no Discord API,
    its line printing the password; one that answers as Discord does was a traceback (aiohttp refuses a URL's user
    beside discord.py's Authorization header). Refused as a bad URL at start, its password shown as ***."""
    base = f"http://admin:supersecret1@127.0.0.1:{not_discord}/api/v10"
    result = crowdtune("run", "--db", str(tmp_path / "b.db"), cwd=tmp_path, check=False,
                       env_extra={**BOT, "CROWDTUNE_API_BASE": base})
    assert result.returncode == ExitCode.BAD_URL, _printed(result)
    [line] = result.stderr.strip().splitlines()
    assert "supersecret1" not in _printed(result) and f"CROWDTUNE_API_BASE is 'http://admin:***@127.0.0.1:{not_discord}/api/v10'" in line, line
    assert "without user:password@" in line and not (tmp_path / "b.db").exists(), line


async def test_what_is_no_discord_api_is_named_without_its_password(not_discord, monkeypatch):
    """reach_discord's line names the URL it tried as every line names one, its password as *** (public_url)."""
    import discord

    from bot.discord.pace import Pace
    from bot.discord.reach import reach_discord
    from bot.errors import StartupError

    monkeypatch.setattr(discord.http.Route, "BASE", f"http://admin:supersecret1@127.0.0.1:{not_discord}/api/v10")
    with pytest.raises(StartupError) as refused:
        await reach_discord(1, Pace(40))
    assert str(refused.value).startswith(f"http://admin:***@127.0.0.1:{not_discord}/api/v10/gateway answered HTTP 404"), refused.value


@pytest.mark.parametrize("setting, url", [("CROWDTUNE_API_BASE", "http://127.0.0.1:1/api/v10?token=supersecret1"),
                                          ("CROWDTUNE_API_BASE", "http://127.0.0.1:1/api/v10#top"),
                                          ("CROWDTUNE_GATEWAY_URL", "ws://127.0.0.1:1/?token=supersecret1"),
                                          ("CROWDTUNE_GATEWAY_URL", "ws://127.0.0.1:1/#top"),
                                          ("CROWDTUNE_GATEWAY_URL", "ws://admin:supersecret1@127.0.0.1:1/"),
                                          ("CROWDTUNE_GATEWAY_URL", "wss://admin@127.0.0.1:1/")])
def test_a_url_setting_with_a_user_query_or_fragment_is_refused_in_one_line(tmp_path, setting, url):
    """An API base with a query was taken, then garbled (".../api/v10?token=.../gateway"): a base has no query or
    fragment (discord.py adds paths to it, and its own query to the gateway's). A gateway URL with a user:password@
    was taken silently, where the API base's is refused: the token is the bot's authorization on both. Refused as its
    setting, in one line, before anything is made, its query, fragment or password not shown (it may be a token)."""
    result = crowdtune("run", "--db", str(tmp_path / "b.db"), cwd=tmp_path, check=False, env_extra={**BOT, setting: url})
    assert result.returncode == ExitCode.BAD_URL, _printed(result)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"crowdtune run: bad URL: {setting} is ") and "supersecret1" not in _printed(result), line
    assert "without user:password@, ?query or #fragment" in line, line
    assert not Path(tmp_path / "b.db").exists()


@pytest.mark.parametrize("parameter", ["sslpassword", "SSLPassword", "token", "access_token", "client_secret", "key", "api_key"])
def test_a_parameter_named_for_a_secret_is_masked_and_others_kept(parameter):
    """public_url, the one masking of every line: asyncpg's sslpassword= (the client key's passphrase) was printed
    whole, as was an HTTP URL's token=; a parameter that carries none (sslmode=, sslkey=, a path) stays readable."""
    from storage.postgres import public_text, public_url

    url = f"postgresql://crowdtune@db.example:5432/crowdtune?sslmode=require&{parameter}=supersecret1&sslkey=/keys/client.key"
    assert public_url(url) == f"postgresql://crowdtune@db.example:5432/crowdtune?sslmode=require&{parameter}=***&sslkey=/keys/client.key"
    assert "supersecret1" not in public_text(f"cannot connect to {url}: bad key passphrase 'supersecret1'", url)
