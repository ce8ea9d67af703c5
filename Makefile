# The two commands of the README: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lint bench clean catalogues

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/signage demo

# Test files run in parallel (pytest-xdist, a file's tests stay together); many tests wait on brokers, servers
# and players more than they compute, so even two cores take three workers well.
TEST_WORKERS ?= $(shell n=$$(nproc); if [ $$n -lt 3 ]; then echo 3; else echo $$n; fi)

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The UI's words (scheduler/web/locale, see scheduler/web/i18n.py): the keys found in code and templates are merged
# into the vi and en catalogues (a new key arrives with an empty msgstr for its words; a key no longer used
# leaves), then both are compiled to the .mo files the server loads. scripts/setup.sh compiles them too.
LOCALE_DIR = scheduler/web/locale
catalogues: setup
	.venv/bin/pybabel extract -F babel.cfg -k translate -k t -k N_ --sort-output --add-location=file \
		--omit-header -o $(LOCALE_DIR)/messages.pot .
	.venv/bin/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -D messages \
		--no-fuzzy-matching --ignore-obsolete
	.venv/bin/pybabel compile -d $(LOCALE_DIR) -D messages --statistics

bench: setup
	.venv/bin/python bench/planner.py

clean:
	rm -rf var .pytest_cache tests/artifacts
