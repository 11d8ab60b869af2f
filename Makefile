# The two commands of the README, and what they need. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: sandbox run test lint i18n bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Try GridBot with no token: sandbox Bot API + the bot + a web chat page on :8080
sandbox: $(STAMP)
	$(BIN)/gridbot sandbox

## Run the bot against Telegram (needs BOT_TOKEN in .env)
run: $(STAMP)
	$(BIN)/gridbot db upgrade
	$(BIN)/gridbot run

## Lint, type-check and run every test
test: $(STAMP) lint
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Extract messages into the catalogs and list what is left to translate
i18n: $(STAMP)
	$(BIN)/python scripts/i18n.py update

## A quick benchmark run (bench/README.md has the full-size ones and their figures)
bench: $(STAMP)
	$(BIN)/python -m bench.quota_engine --quick
