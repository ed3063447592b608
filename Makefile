# Everyday targets. The two set-up commands of the README are `make run` and `make test`.
GO ?= go

.PHONY: all run test test-short lint vet fmt docs relaxations-unused bench bench-mbsync install conformance-dovecot matrix readme-matrix determinism expectations engines-matrix

all: lint test

## run: the built-in catalogue against the embedded fake server
run:
	$(GO) run ./cmd/syncharness run

# A bound far above what the tests take (about 15 minutes on 2 cores, most of it the
# engine's corruption sweeps under the race detector) and well under CI's 90: a hung test
# fails with its goroutines dumped instead of the job being killed. -v shows each suite's
# skipped specs and why.
TEST_TIMEOUT ?= 45m

## test: every test, with the race detector (what CI runs)
test:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./...

## expectations: record again each external engine's results on the catalogue
## (clients/external/expectations/*.txt; explain every new failure in its note)
expectations:
	SYNCHARNESS_UPDATE_EXPECTATIONS=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./harness/enginecatalog

## engines-matrix: our engine, mbsync and OfflineIMAP side by side on the fake server and
## on a private Dovecot (docs/engines-matrix.md, its summary in the README)
engines-matrix:
	$(GO) build -o .syncharness.bin ./cmd/syncharness
	$(DOVECOT_RUN) sh -c './.syncharness.bin matrix --engine go,mbsync,offlineimap --server "$$SYNCHARNESS_SERVER" --admin dovecot --admin-doveadm "$$SYNCHARNESS_DOVEADM" --label "Dovecot $$(dovecot --version | cut -d" " -f1)" --out docs/engines-matrix.md'; \
	  status=$$?; rm -f .syncharness.bin; exit $$status

## determinism: every push scenario and 12 generated ones with push steps, each run twice
## with the same seed while every core spins: histories and transcripts must be identical
determinism:
	SYNCHARNESS_DETERMINISM_RUNS=12 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./harness -ginkgo.label-filter=determinism

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

## docs: regenerate the scenario language reference and docs/relaxations.md
docs:
	$(GO) run ./cmd/syncharness help scenarios --markdown > docs/scenarios.md
	$(GO) run ./cmd/syncharness help relaxations --markdown > docs/relaxations.md

## relaxations-unused: list the checker's relaxations no catalogue scenario needs (both stores)
relaxations-unused:
	$(GO) run ./cmd/syncharness run --json .relax-memory.json >/dev/null; \
	$(GO) run ./cmd/syncharness run --store disk --json .relax-disk.json >/dev/null; \
	$(GO) run ./cmd/syncharness help relaxations --unused .relax-memory.json .relax-disk.json; \
	rm -f .relax-memory.json .relax-disk.json

## bench: benchmarks of the fake server, the engine, the checker and the catalogue
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-mbsync: the engine and mbsync side by side on a private Dovecot (run as root; benchstat format)
bench-mbsync:
	SYNCHARNESS_BENCH_MBSYNC=1 $(GO) test -run '^$$' -bench 'VsMbsync' -benchtime 3x -timeout 60m ./clients/engine/

install:
	$(GO) install ./cmd/syncharness

# A private Dovecot on loopback for the two targets below (root needed: Dovecot switches to
# its own users); the command gets SYNCHARNESS_SERVER, SYNCHARNESS_PASSWORD and
# SYNCHARNESS_DOVEADM.
DOVECOT_RUN = $(GO) run ./testsupport/dovecot/cmd/dovecot-run --

## conformance-dovecot: the catalogue against a private Dovecot, with the dovecot admin profile
# Exit status 4 (nothing failed but server findings: Dovecot's rename bug, its stale LIST-STATUS) counts
# as success here: the report names the finding, and it is Dovecot's to fix.
conformance-dovecot:
	$(GO) build -o .syncharness.bin ./cmd/syncharness
	$(DOVECOT_RUN) sh -c './.syncharness.bin run --server "$$SYNCHARNESS_SERVER" --admin dovecot --admin-doveadm "$$SYNCHARNESS_DOVEADM"'; \
	  status=$$?; rm -f .syncharness.bin; \
	  if [ $$status -eq 4 ]; then echo "conformance-dovecot: only server findings (Dovecot's), counted as a pass"; status=0; fi; \
	  exit $$status

## matrix: regenerate docs/conformance.md (the catalogue on the fake server and on Dovecot)
matrix:
	$(GO) build -o .syncharness.bin ./cmd/syncharness
	$(DOVECOT_RUN) sh -c './.syncharness.bin matrix --server "$$SYNCHARNESS_SERVER" --admin dovecot --admin-doveadm "$$SYNCHARNESS_DOVEADM" --label "Dovecot $$(dovecot --version | cut -d" " -f1)" --out docs/conformance.md'; \
	  status=$$?; rm -f .syncharness.bin; exit $$status
	$(MAKE) --no-print-directory readme-matrix

# readme-matrix: copy the summary table of docs/conformance.md into the README, between its
# matrix markers.
readme-matrix:
	awk '/<!-- matrix:begin/ { print; while ((getline l < "docs/conformance.md") > 0) { if (l ~ /^\| target/) t = 1; if (t && l !~ /^\|/) break; if (t) print l }; skip = 1; next } /<!-- matrix:end/ { skip = 0 } !skip' README.md > README.md.new && mv README.md.new README.md
