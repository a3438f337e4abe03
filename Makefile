# mailsrv: see README.md. `make run` starts the whole server on loopback;
# `make test` installs what the tests need and runs them all.

GO       ?= go
PREFIX   ?= /usr/local
DESTDIR  ?=
LIBEXEC  ?= $(PREFIX)/lib/mailsrv
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PROGRAMS := smtpd imapd pop3d queue deliver mailctl
FUZZTIME ?= 5s

.PHONY: checkman all build test unit e2e fuzz fuzz-short deps run install bench man vet fmt check clean $(PROGRAMS)

all: build

build: $(PROGRAMS)

$(PROGRAMS):
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/$@ ./cmd/$@

# Every test: unit and end-to-end (real binaries, real clients), then a
# short fuzz run of every fuzz target.
test: deps vet
	$(GO) test -count=1 -timeout 12m ./...
	$(MAKE) fuzz-short

deps:
	@scripts/deps.sh

vet: checkman
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd pkg test)" || { gofmt -l cmd pkg test; echo "gofmt needed"; exit 1; }

# One short run of each fuzz target (FUZZTIME each).
fuzz-short:
	@scripts/fuzz.sh $(FUZZTIME)

# Longer fuzzing, by hand: make fuzz FUZZTIME=10m
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

run: build
	@scripts/run.sh

bench: build
	@bench/run.sh

man:
	@scripts/checkman.sh --write

install: build
	install -d $(DESTDIR)$(LIBEXEC) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	for p in $(PROGRAMS); do install -m 755 bin/$$p $(DESTDIR)$(LIBEXEC)/$$p; done
	ln -sf $(LIBEXEC)/mailctl $(DESTDIR)$(SBINDIR)/mailctl
	for f in man/*.5; do install -m 644 $$f $(DESTDIR)$(MANDIR)/man5/; done
	for f in man/*.7; do install -m 644 $$f $(DESTDIR)$(MANDIR)/man7/; done
	for f in man/*.8; do install -m 644 $$f $(DESTDIR)$(MANDIR)/man8/; done

fmt:
	gofmt -w cmd pkg test

# The race detector on the packages, and on the daemons the end-to-end
# tests start (built with -race; a race they report fails the test).
check: vet
	$(GO) test -count=1 -race -shuffle=on ./pkg/...
	MAILSRV_E2E_RACE=1 $(GO) test -count=1 -timeout 20m ./test/

clean:
	rm -rf bin

checkman:
	@scripts/checkman.sh
