# dtrain: the two commands a new user needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
# The Slurm test (scripts/mpi-tests.d/slurm.sh) installs slurm-wlm, munge and libpmix-dev itself when run as root.
APT_PACKAGES := libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev pkg-config \
                dataset-fashion-mnist python3 python3-pip iproute2
RANKS ?= 4
DEMO_ARGS ?= train --model mlp --loss clce --epochs 1 --out runs/demo
BIN := .build/release/dtrain
MPIRUN := scripts/mpirun.sh

.PHONY: setup build demo doctor test unit-test mpi-test bench fuzz clean plot-deps studies install

## setup: install the system packages (OpenMPI, OpenBLAS, zlib, libpng, libjpeg, Fashion-MNIST) when missing; needs
## root or sudo.
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

## build: release binary at .build/release/dtrain
build:
	swift build -c release

## demo: set up, build, check the ranks, train CLCE on Fashion-MNIST on $(RANKS) ranks (DEMO_ARGS to change), and
## plot its curves (runs/demo/curves.png; matplotlib is installed quietly, or the plot is skipped with a note).
demo: setup build
	@python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install -q matplotlib >/dev/null 2>&1 \
	  || echo "note: could not install matplotlib (python3 -m pip install matplotlib failed); the demo runs without the plot"
	$(MPIRUN) -n $(RANKS) $(BIN) doctor
	$(MPIRUN) -n $(RANKS) $(BIN) $(DEMO_ARGS)
	@if python3 -c "import matplotlib" 2>/dev/null; then $(BIN) plot runs/demo; \
	  else echo "note: no plot (matplotlib missing); install it with make plot-deps, then run: $(BIN) plot runs/demo"; fi

## install: dtrain to $(PREFIX)/bin, its scripts (plots, Slurm batch script) to $(PREFIX)/share/dtrain, where
## `dtrain plot` and `dtrain study` find them (after `make build`). PREFIX defaults to /usr/local.
PREFIX ?= /usr/local
install:
	@[ -x $(BIN) ] || { echo "no $(BIN): run make build first"; exit 1; }
	install -D -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/dtrain
	install -d $(DESTDIR)$(PREFIX)/share/dtrain/scripts $(DESTDIR)$(PREFIX)/share/dtrain/hostfiles
	install -m 755 scripts/plot_study.py scripts/plot_run.py scripts/compare_losses.py scripts/compare_runs.py \
	  scripts/checkpoint_diff.py scripts/check_export.py scripts/slurm/dtrain.sbatch $(DESTDIR)$(PREFIX)/share/dtrain/scripts/
	install -m 644 hostfiles/* $(DESTDIR)$(PREFIX)/share/dtrain/hostfiles/
	@echo "installed $(DESTDIR)$(PREFIX)/bin/dtrain; put $(PREFIX)/bin on PATH and run dtrain from any folder"

## bench: training-step and loss throughput against the measured sgemm rate.
bench: build
	$(BIN) bench --model mlp --steps 20
	$(BIN) bench --model cnn --steps 5
	$(BIN) bench loss --n 8192 --dim 128

## doctor: check collectives, sgemm and bandwidth on $(RANKS) ranks.
doctor: build
	$(MPIRUN) -n $(RANKS) $(BIN) doctor

## test: unit tests (swift test) then dtrain under mpirun with 1-4 ranks.
test: setup unit-test mpi-test

unit-test:
	swift build --build-tests
	OPENBLAS_NUM_THREADS=1 swift test --skip-build

mpi-test: build
	scripts/mpi-tests.sh $(BIN)

## fuzz: libFuzzer harnesses for the IDX/gzip, CIFAR, safetensors and config parsers, FUZZ_SECONDS each (default 60).
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

## plot-deps: install matplotlib (PyPI) for the plots of `dtrain study` (scripts/plot_study.py).
plot-deps:
	python3 -m pip install matplotlib

## studies: the published studies of docs/RESULTS.md (hours; resumable), then copy them into docs/results/.
## STUDIES to choose (mlp-grid lambda cnn large-batch fewshot publish; large-batch-cnn takes days), RUNS for the
## folder (default runs).
STUDIES ?= all
studies: setup build
	@python3 -c "import matplotlib" 2>/dev/null || $(MAKE) plot-deps
	scripts/studies.sh $(STUDIES)

clean:
	rm -rf .build
