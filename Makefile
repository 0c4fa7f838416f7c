# Two commands for a first run: `make run` and `make test` (see README.md).
# Environment variables (PORT, DATABASE_URL, SECRET_KEY, ...) pass through,
# from the environment or the command line: `make run PORT=8080`.

SHELL := /bin/bash

# Extra pytest arguments: make test ARGS="-x -k activation"
ARGS ?=

.PHONY: run test dev clean

run:  ## Start the app at http://127.0.0.1:$PORT (default 3000); SQLite unless DATABASE_URL is set
	scripts/run.sh

test:  ## Run the whole test suite (pytest)
	scripts/test.sh $(ARGS)

dev:  ## Dev server with hot reload: frontend on $PORT (3000), backend on $BACKEND_PORT (8000)
	scripts/run.sh --dev

clean:  ## Remove everything the commands install or build
	rm -rf .web .venv .tools .stamps
