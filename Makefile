# The two commands of the README: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lint bench clean

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/signage demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest

bench: setup
	.venv/bin/python bench/planner.py

clean:
	rm -rf var .pytest_cache tests/artifacts
