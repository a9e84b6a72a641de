"""compose.yaml (PostgreSQL and two bot shards from the Dockerfile's image) parses and describes a bot
that can run; the image and `make run` install every system library the installed packages need, and
no more than running needs; the build context (.dockerignore) holds what the Dockerfile copies and no
secret or data; commands run in the container can write where they start. Docker is not on the test
machines, so this checks the files, not a running stack (docs/COMPOSE.md tells how the stack was run
by hand)."""

import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from bot.discord.shards import ShardPlan
from bot.media.synth import INSTALL_HINT
from storage import is_postgres_url

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_every_shard_once_against_its_postgres_service():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    database = services["postgres"]
    assert "healthcheck" in database and any(v.endswith(":/var/lib/postgresql/data") for v in database["volumes"])
    bots = {name: s for name, s in services.items() if name != "postgres"}
    assert len(bots) >= 2
    shards: list[int] = []
    counts = set()
    for name, bot in bots.items():
        assert bot["build"] == "." and (ROOT / "Dockerfile").is_file()
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        env = bot["environment"]
        url = env["CROWDTUNE_DB"]
        assert is_postgres_url(url) and urlsplit(url).hostname == "postgres" and urlsplit(url).port == 5432
        # The password from .env, given apart from the URL: any characters work (none is in the file).
        assert urlsplit(url).password is None and env["PGPASSWORD"].startswith("${POSTGRES_PASSWORD")
        plan = ShardPlan.make(int(env["CROWDTUNE_SHARD_COUNT"]), env["CROWDTUNE_SHARD_IDS"])
        counts.add(plan.count)
        shards += plan.ids
    (count,) = counts  # every process agrees on the shard count
    assert sorted(shards) == list(range(count))  # each shard run by exactly one process


# What every Debian image has, python:3.11-slim included (apt itself links them): the C and C++ runtimes, zlib.
DEBIAN_BASE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


def _debian_package(library: str) -> str:
    for path in (library, "/usr" + library):  # merged /usr: ldd says /lib/..., dpkg may list /usr/lib/...
        found = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.split(":", 1)[0]
    raise AssertionError(f"no Debian package holds {library}")


def _system_libraries_linked() -> dict[str, str]:
    """Each shared library outside the installed Python packages that one of their compiled modules
    links (as ldd resolves it on this machine) -> the module that needs it."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    needed: dict[str, str] = {}
    for module in site.rglob("*.so*"):
        if not module.is_file():
            continue
        out = subprocess.run(["ldd", str(module)], capture_output=True, text=True).stdout
        for library in re.findall(r"=> (/\S+)", out):
            if not library.startswith(str(site)):  # a wheel's own bundled copies (*.libs) travel with it
                needed.setdefault(library, module.name)
    return needed


@pytest.mark.skipif(not (shutil.which("ldd") and shutil.which("dpkg")), reason="needs ldd and dpkg (Debian)")
def test_the_image_and_make_install_every_system_library_the_wheels_link():
    """A wheel that links a system library without bundling it (pedalboard's limiter links libatomic)
    works here and fails at the first round in the image, where python:3.11-slim lacks it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    image = set(re.search(r"apt-get install -y --no-install-recommends ([^\\&]+)", dockerfile).group(1).split())
    make = set(re.search(r"^APT_PACKAGES := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split())
    needed = {_debian_package(library): module for library, module in _system_libraries_linked().items()}
    missing = {package: module for package, module in needed.items() if package not in DEBIAN_BASE | image}
    assert not missing, f"the Dockerfile does not install (package: a module that links it): {missing}"
    assert not {package for package in needed if package not in DEBIAN_BASE | make}, "nor does the Makefile"


def _makefile_list(name: str) -> list[str]:
    return re.search(rf"^{name} := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()


def _dockerfile() -> list[tuple[str, list[str]]]:
    """The Dockerfile's instructions as (KEYWORD, words), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [(words[0].upper(), words[1:]) for line in text.splitlines()
            if (words := line.split()) and not words[0].startswith("#")]


def test_the_image_and_make_run_install_what_running_needs_and_only_make_test_adds_the_tests():
    """One list of what running needs (Makefile APT_PACKAGES), installed as it is by the image and named
    by the line a missing synthesiser gives; what only the tests need (a PostgreSQL server, opus-tools)
    is apart, so neither `make run` nor the image installs a database server."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    image = re.search(r"apt-get install -y --no-install-recommends ([^\\&]+)", dockerfile).group(1).split()
    run, tests_only = _makefile_list("APT_PACKAGES"), _makefile_list("TEST_APT_PACKAGES")
    assert sorted(image) == sorted(run) == sorted(INSTALL_HINT.removeprefix("apt-get install ").split())
    assert "postgresql" in tests_only and not set(tests_only) & set(run)


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
@pytest.mark.parametrize("target", ["run", "test"])
def test_make_asks_for_the_packages_of_its_target_only(target, tmp_path):
    """On a machine with none of the packages, as a user who is not root, `make run` and `make test` say
    the one line to run: `make run` without what only the tests need."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, script in {"dpkg": "exit 1", "id": "echo 1000"}.items():  # nothing installed; not root
        (fake / name).write_text(f"#!/bin/sh\n{script}\n")
        (fake / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["make", "-s", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"], env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0 and not (tmp_path / "venv").exists(), result.stdout + result.stderr
    asked = re.search(r"^  apt-get install -y (.+)$", result.stdout, re.M).group(1).split()
    wanted = _makefile_list("APT_PACKAGES") + (_makefile_list("TEST_APT_PACKAGES") if target == "test" else [])
    assert [p for p in asked if p != "python3-venv"] == wanted
    assert ("postgresql" in asked) == (target == "test")  # running needs no database server


def _dockerignore() -> list[tuple[re.Pattern[str], bool]]:
    """.dockerignore as (pattern, is an exception `!`), as Docker reads it: a pattern is relative to the
    context's root (a leading / is dropped, the path cleaned); `*` and `?` stay within one folder, `**`
    spans any number of folders. This matcher knows only those; the file is checked to use no others."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
        assert not set(pattern) & set("[]\\"), f"{line}: a pattern this test cannot read"
        parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
        wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
        rules.append((re.compile("".join(wildcards.get(p, re.escape(p)) for p in parts)), exception))
    return rules


def _in_context(path: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Whether Docker sends `path` (relative, with /) as build context: the last pattern that matches it
    or one of the folders it is in decides; with none, it is sent."""
    parts = path.split("/")
    folders_and_path = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    sent = True
    for pattern, exception in rules:
        if any(pattern.fullmatch(p) for p in folders_and_path):
            sent = exception
    return sent


def _gitignored_examples() -> list[str]:
    """A path for each line of .gitignore that git would ignore: at the root and, for a line that is
    not anchored to the root, inside a folder the image copies too."""
    examples = []
    for line in (ROOT / ".gitignore").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        anchored = "/" in line.rstrip("/")
        example = line.strip("/").replace("*", "x") + ("/file" if line.endswith("/") else "")
        examples += [example] if anchored else [example, f"bot/media/{example}"]
    return examples


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_secret_or_data():
    """`docker build` (and docker-compose 1.29's builder) send the folder as the build context: without
    .dockerignore, .env (the token, database passwords), .venv and crowdtune-data/ (users' databases)."""
    rules = _dockerignore()
    copied = [source for keyword, words in _dockerfile() if keyword in {"COPY", "ADD"}
              for source in [w for w in words if not w.startswith("--")][:-1]]
    assert copied
    for source in copied:
        path = ROOT / source
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
        assert files, f"the Dockerfile copies {source}, which is not here"
        left_out = [str(f.relative_to(ROOT)) for f in files if not _in_context(f.relative_to(ROOT).as_posix(), rules)]
        assert not left_out, f".dockerignore leaves out what the Dockerfile copies: {left_out[:5]}"
    secrets_and_data = [".env", ".env.production", "bot/.env", ".venv/bin/python", "crowdtune-data/crowdtune.db",
                        ".git/config", "export.zip", "bot/__pycache__/cli.cpython-311.pyc", *_gitignored_examples()]
    sent = [path for path in secrets_and_data if _in_context(path, rules)]
    assert not sent, f"sent to the Docker daemon: {sent}"


def test_commands_run_in_the_container_start_in_a_folder_its_user_writes():
    """The bot's /export, over the upload limit, says to run `crowdtune export ... --out export.zip`:
    run in the container (docker compose exec), a relative path lands in the folder the command starts
    in, which must belong to the user the image runs as, and be the volume, where the file is kept."""
    instructions = _dockerfile()
    workdir = [w for keyword, w in instructions if keyword == "WORKDIR"][-1][0]
    user = [w for keyword, w in instructions if keyword == "USER"][-1][0]
    owned = {path for keyword, words in instructions if keyword == "RUN"
             for command in " ".join(words).split("&&") if (c := command.split())[:2] == ["chown", user] for path in c[2:]}
    volumes = {v for keyword, words in instructions if keyword == "VOLUME" for v in re.findall(r'"([^"]+)"', " ".join(words))}
    assert workdir in owned and workdir in volumes, (workdir, user, owned, volumes)


def test_the_readme_runs_commands_in_the_services_and_volume_the_files_define():
    """The README's Docker section tells how to run a CLI command in the container: every service it
    names is one compose.yaml defines, and each --out it writes there is in the image's volume."""
    services = set(yaml.safe_load((ROOT / "compose.yaml").read_text())["services"])
    readme = (ROOT / "README.md").read_text()
    execs = re.findall(r"docker compose (?:exec|cp) (\S+?)(?::\S*)? (.*)", readme)
    assert execs, "the README says how to run a command in the container"
    assert {service for service, _ in execs} <= services
    volumes = {v for keyword, words in _dockerfile() if keyword == "VOLUME" for v in re.findall(r'"([^"]+)"', " ".join(words))}
    outs = [out for _, rest in execs for out in re.findall(r"--out (\S+)", rest)]
    assert outs and all(not out.startswith("/") or any(out.startswith(v + "/") for v in volumes) for out in outs), outs


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
@pytest.mark.parametrize("target", ["run", "test"])
def test_make_installs_the_test_extras_for_make_test_only(target, tmp_path):
    """Found by a newcomer's trial: `make -n run` showed `pip install -e '.[test]'`, though `make run`
    installs only what running needs. Read by `make -n` on a new virtual environment (nothing runs)."""
    plan = subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
                          capture_output=True, text=True)
    assert plan.returncode == 0 and not (tmp_path / "venv").exists(), plan.stdout + plan.stderr
    installs = re.findall(r"pip install -q (?:-e )?(\S+)$", plan.stdout, re.M)
    assert installs[-1:] == (["'.[test]'"] if target == "test" else ["."]), plan.stdout
    assert "'.[test]'" not in installs[:-1] and installs.count(".") == 1, plan.stdout
