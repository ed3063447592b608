# Everyday targets. The two set-up commands of the README are `make run` and `make test`.
GO ?= go

.PHONY: all run test test-short lint vet fmt docs bench install conformance-dovecot

all: lint test

## run: the built-in catalogue against the embedded fake server
run:
	$(GO) run ./cmd/syncharness run

## test: every test, with the race detector (what CI runs)
test:
	$(GO) test -race -count=1 ./...

## lint: scenario files and Go vet
lint: vet
	$(GO) run ./cmd/syncharness lint scenarios/catalog

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

## fmt: format Go code and scenario files
fmt:
	gofmt -w $$(git ls-files '*.go')
	$(GO) run ./cmd/syncharness fmt -w scenarios/catalog/*.scn

## docs: regenerate the scenario language reference
docs:
	$(GO) run ./cmd/syncharness help scenarios --markdown > docs/scenarios.md

## bench: benchmarks of the fake server, the engine, the checker and the catalogue
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

install:
	$(GO) install ./cmd/syncharness
