# dtrain: the two commands a new user needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
APT_PACKAGES := libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev pkg-config dataset-fashion-mnist python3 python3-pip
RANKS ?= 4
DEMO_ARGS ?= train --model mlp --loss clce --epochs 1 --out runs/demo
BIN := .build/release/dtrain
MPIRUN := scripts/mpirun.sh

.PHONY: setup build demo doctor test unit-test mpi-test bench fuzz clean plot-deps studies

## setup: install the system packages (OpenMPI, OpenBLAS, zlib, Fashion-MNIST) when missing; needs root or sudo.
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

## demo: set up, build, check the ranks, and train CLCE on Fashion-MNIST on $(RANKS) ranks (DEMO_ARGS to change).
demo: setup build
	$(MPIRUN) -n $(RANKS) $(BIN) doctor
	$(MPIRUN) -n $(RANKS) $(BIN) $(DEMO_ARGS)

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
## STUDIES to choose (mlp-grid lambda cnn publish), RUNS for the folder (default runs).
STUDIES ?= all
studies: setup build
	@python3 -c "import matplotlib" 2>/dev/null || $(MAKE) plot-deps
	scripts/studies.sh $(STUDIES)

clean:
	rm -rf .build
