# The two commands of the README, and the steps they are made of.
# uv comes from PyPI when the machine lacks it; everything else from the project's own files.

UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
UV_VERSION = 0.13.8

.PHONY: run test bench install uv infra clean

run: install ## Kafka and the four services with the embedded defaults, plus a small demo
	$(UV) run tweespoor run

test: install infra ## the whole test suite, against the real Kafka broker and PostgreSQL
	$(UV) run pytest

bench: install ## the benchmarks of bench/README.md: every stage, one table (about 6 minutes on a quiet 2-core machine)
	$(UV) run python -m bench

install: uv ## the workspace, exactly as locked
	$(UV) sync --all-packages --locked

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet "uv==$(UV_VERSION)"

infra: install ## what the tests need that is not Python: PostgreSQL and Chromium (Debian), the Kafka jars (Maven)
	$(UV) run tweespoor postgres install
	$(UV) run tweespoor chromium install
	$(UV) run tweespoor kafka fetch

clean: ## the local data of `make run`
	rm -rf .tweespoor
