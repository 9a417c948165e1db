# Two commands run everything: `make run` (the platform) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/datasets/train

.PHONY: run test system-deps train export bench clean lock screenshots

# One stamp per lock: `make run` installs the runtime only (no torch, NNCF or Playwright); test, train and
# bench install their lock, which holds the one below it with the same pins. Every lock is compiled from its
# requirements*.in by `make lock` (pip-tools): every package pinned, each with its hashes.
PIP_INSTALL := $(PY) -m pip install --quiet --require-hashes
LOCKS := requirements requirements-train requirements-dev requirements-bench

$(VENV)/.installed-run: requirements.txt
	test -x $(PY) || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip; }
	$(PIP_INSTALL) -r requirements.txt
	touch $@

$(VENV)/.installed-train: $(VENV)/.installed-run requirements-train.txt
	$(PIP_INSTALL) -r requirements-train.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-train requirements-dev.txt
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-dev requirements-bench.txt
	$(PIP_INSTALL) -r requirements-bench.txt
	touch $@

## Recompile the locks after editing a requirements*.in, in order (each is constrained by the one below it).
## Pins already in a lock stay unless the .in asks otherwise; `make lock UPGRADE=--upgrade` moves them all.
lock: $(VENV)/.installed-dev
	for f in $(LOCKS); do \
		$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
			--no-emit-find-links $(UPGRADE) -o $$f.txt $$f.in || exit 1; \
	done

## The whole platform: web on http://127.0.0.1:8000, one worker, the beat (Redis found or started).
run: $(VENV)/.installed-run
	$(PY) -m scripts.run

## Every test, against real PostgreSQL and Redis (found or started) and headless Chromium.
test: $(VENV)/.installed-dev system-deps
	$(PY) -m scripts.test $(ARGS)

## Debian's chromium (browser tests), docker-compose (compose file validation), nginx (the shipped proxy config
## is tested with it) and nftables (the multi-host tests cut links with it; they run as root only), when missing.
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v docker-compose >/dev/null || ! [ -x /usr/sbin/nginx ] || { [ "$$(id -u)" = 0 ] && ! command -v nft >/dev/null; }; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium docker-compose nginx nftables >/dev/null; \
	fi

## The pictures of every page in docs/ (390 and 1280 px), from a live server and a real worker (about 2 min).
screenshots: $(VENV)/.installed-dev system-deps
	$(PY) -m scripts.screenshots

## Resume EDSR training of one scale in the background at low priority: make train SCALE=2
train: $(VENV)/.installed-train
	nice -n 19 $(PY) -m training.train --data $(DATA) --scale $(SCALE) --run training/runs/x$(SCALE) $(TRAIN_ARGS)

bench: $(VENV)/.installed-bench
	$(PY) -m bench

clean:
	rm -rf var/media var/ov-cache
