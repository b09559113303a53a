# lstm-gpu: the two commands are `make bench` and `make test`; both install what is missing.
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin
SWIFT ?= swift
PACKAGES := ocl-icd-opencl-dev opencl-headers libopenblas-dev pocl-opencl-icd libopenmpi-dev openmpi-bin oclgrind
PYTHON ?= python3
BENCH_ARGS ?=

.PHONY: deps build bench test check fixtures bundle clean format lint

## deps: install the Debian packages the build and the tests need (apt-get as root).
deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing packages; run: sudo apt-get update && sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

## build: the release binary, .build/release/lstm-gpu
build: deps
	$(SWIFT) build -c release --product lstm-gpu

## bench: the standard suite on every available backend
bench: build
	.build/release/lstm-gpu bench $(BENCH_ARGS)

## test: the format check, then the whole test suite (parity, gradient checks, errors, CLI)
test: deps lint
	$(SWIFT) build --build-tests
	$(SWIFT) test

## lint: swift format's check of the whole tree with .swift-format (fails on any finding)
lint:
	$(SWIFT) format lint --strict --configuration .swift-format -r Sources Tests Examples Package.swift

## format: apply .swift-format to the whole tree
format:
	$(SWIFT) format format --configuration .swift-format -i -r Sources Tests Examples Package.swift

## check: every committed fixture through the CPU path
check: build
	.build/release/lstm-gpu check Tests/LSTMKitTests/Fixtures --quiet

## fixtures: regenerate the parity fixtures (needs torch and safetensors in $(PYTHON))
fixtures:
	$(PYTHON) scripts/make-fixtures

clean:
	rm -rf .build dist

## bundle: dist/lstm-gpu-linux-x86_64.tar.xz, runs on Linux machines without Swift
bundle: deps
	scripts/make-bundle --check
