# Two commands do all the set-up on a fresh Debian machine: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
# What running needs (the Dockerfile installs the same): FluidSynth, a General MIDI soundfont, and libatomic1,
# which pedalboard's wheel links without bundling it.
APT_PACKAGES := fluidsynth libfluidsynth3 timgm6mb-soundfont libatomic1
# What only the tests add: opus-tools decodes the bot's OGG files; PostgreSQL's server runs the tests'
# private database (tests/pgserver.py). `make run` installs none of it.
TEST_APT_PACKAGES := opus-tools postgresql
# The virtual environment is made again when pyproject.toml changes: its checksum names the stamps. `make run` installs
# the package (RUN_STAMP); `make test` adds its test extras on top (TEST_STAMP), which `make run` does not install.
CHECKSUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-$(CHECKSUM)
TEST_STAMP := $(VENV)/.installed-test-$(CHECKSUM)

.PHONY: run test system-deps test-deps

# Installs the system packages among $(1) that are missing (as root), or says the one line to run.
define install-missing
	@missing=""; \
	for package in $(1); do dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing system packages; run this once as root, then try again:"; \
			echo "  apt-get install -y$$missing"; \
			exit 1; \
		fi; \
	fi
endef

system-deps:
	$(call install-missing,$(APT_PACKAGES))

test-deps:
	$(call install-missing,$(APT_PACKAGES) $(TEST_APT_PACKAGES))

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e .
	rm -f $(VENV)/.installed-*; touch $@

# Made again after RUN_STAMP is (which removes every stamp), so a changed pyproject.toml reinstalls the extras too.
$(TEST_STAMP): $(RUN_STAMP)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

# Ctrl-C ends a terminal session cleanly with exit code 130 (README "Exit codes"): no failure for make to report, so 130
# passes; any other code still fails. The shell catches the interrupt (`trap :`, reset for crowdtune, which still gets
# it) and waits for crowdtune's clean end, rather than dying of it, which make would report as "Interrupt".
run: system-deps $(RUN_STAMP)
	trap : INT; $(VENV)/bin/crowdtune run $(ARGS) || [ $$? -eq 130 ]

test: test-deps $(TEST_STAMP)
	$(VENV)/bin/python -m pytest -q $(ARGS)
