# The two commands of the README:
#   make demo   runs chargeguard with InfluxDB and a simulated fleet
#   make test   installs what the tests need and runs every test
.PHONY: demo test bench build deps clean help

help:
	@echo "make demo    run chargeguard, InfluxDB and a simulated fleet (scripts/demo.sh)"
	@echo "make test    install test dependencies, vet, run all tests and a short fuzz (scripts/test.sh)"
	@echo "make bench   run the benchmarks (scripts/bench.sh)"
	@echo "make build   build every command into .cache/bin"
	@echo "make deps    install the servers the tests use (scripts/install-deps.sh)"

demo:
	scripts/demo.sh

test:
	scripts/test.sh

bench:
	scripts/bench.sh

build:
	mkdir -p .cache/bin
	go build -o .cache/bin/ ./cmd/...

deps:
	scripts/install-deps.sh

# Removes builds, the demo's data and the built InfluxDB (rebuilt by make test).
clean:
	rm -rf .cache bin
