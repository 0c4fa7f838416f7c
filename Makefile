# Two commands for a first run: `make run` and `make test` (see README.md).
# Environment variables (PORT, DATABASE_URL, SECRET_KEY, ...) pass through,
# from the environment or the command line: `make run PORT=8080`.

SHELL := /bin/bash

# Extra arguments: make test ARGS="-x -k activation" (pytest), make bench ARGS=--quick (a short run)
ARGS ?=
# Parallel pytest processes (pytest-xdist), each with databases of its own: for make
# test-fast (one per core) and make test-e2e (each also starts its app and its Chromium).
TEST_WORKERS ?= auto
E2E_WORKERS ?= 2

.PHONY: run test test-fast test-e2e dev bench clean

run:  ## Start the app at http://127.0.0.1:$PORT (default 3000); SQLite unless DATABASE_URL is set
	scripts/run.sh

test:  ## Run the whole test suite (pytest), one process
	scripts/test.sh $(ARGS)

test-fast:  ## Every test without the e2e marker (no browser, no started app), in parallel: a few minutes
	scripts/test.sh -m "not e2e" -n $(TEST_WORKERS) $(ARGS)

# Whole files to a worker, in the order tests/conftest.py sorts them (browser tests last:
# a process that has started Playwright can no longer asyncio.run()), not largest first.
test-e2e:  ## The tests with the e2e marker (browser, started app, private servers), in parallel by file
	scripts/test.sh -m e2e -n $(E2E_WORKERS) --dist loadfile --no-loadscope-reorder $(ARGS)

dev:  ## Dev server with hot reload: frontend on $PORT (3000), backend on $BACKEND_PORT (8000)
	scripts/run.sh --dev

bench:  ## Benchmarks on PostgreSQL at 127.0.0.1:5432 and Redis dbs 14 and 15 (~25 min; ARGS=--quick a few): writes docs/benchmarks*.md and docs/profile-latency.png
	scripts/bootstrap.sh --dev
	@hash="$$(cat bench/requirements.txt | sha256sum | cut -d' ' -f1)"; \
	if [ "$$(cat .stamps/pip-bench.sha256 2>/dev/null)" != "$$hash" ]; then \
		echo "bench: installing bench/requirements.txt"; \
		.venv/bin/python -m pip install --disable-pip-version-check -q -r bench/requirements.txt && \
		echo "$$hash" > .stamps/pip-bench.sha256; \
	fi
	.venv/bin/python -m bench $(ARGS)

clean:  ## Remove everything the commands install or build
	rm -rf .web .run .venv .tools .stamps
