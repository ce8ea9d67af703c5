# The two commands of the README: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lint bench clean

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

bench: setup
	.venv/bin/python bench/planner.py

clean:
	rm -rf var .pytest_cache tests/artifacts
