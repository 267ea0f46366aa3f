# Sextant build. `make` builds every program into bin/; see README.md for the rest.
#   make SANITIZER=address,undefined   builds everything sanitized into build-san/bin
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
SANITIZER ?=
OPT ?= -O2

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
ifeq ($(SANITIZER),)
  BUILD := build
  BIN := bin
  SANFLAGS :=
else
  BUILD := build-san
  BIN := build-san/bin
  SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

GEN := $(BUILD)/gen
CPPFLAGS += -D_GNU_SOURCE -Ilib -I$(GEN) -I/usr/include/postgresql
CFLAGS ?= $(OPT) -g
ALLCFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SANFLAGS) -pthread -MMD -MP
LDFLAGS += $(SANFLAGS) -pthread
LDLIBS := -lfcgi -lhiredis -lpq -lprotobuf-c -lyajl -lz -lcrypto -lsodium -lsystemd -lm

# Our OTLP .proto files (written from the spec's field numbers), compiled by protoc-c.
PROTOS := $(shell find proto -name '*.proto' | sort)
PROTO_C := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
PROTO_O := $(PROTO_C:.c=.o)

LIB_SRC := $(wildcard lib/*.c)
LIB_O := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
LIBSX := $(BUILD)/libsextant.a

PROGRAMS := sextant-ingest sextant-api sextant-sse sextant-persist sextant-rollup sextantctl
INGEST_SRC := $(wildcard fcgi/ingest*.c)
API_SRC := $(wildcard fcgi/api*.c)
SSE_SRC := $(wildcard fcgi/sse*.c)
PERSIST_SRC := $(wildcard workers/persist*.c)
ROLLUP_SRC := $(wildcard workers/rollup*.c)
CTL_SRC := $(wildcard ctl/*.c)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps test unit-test e2e-test run up down bench fuzz install clean programs check-tools web
all: $(addprefix $(BIN)/,$(PROGRAMS)) web

# --- the dashboard (web/): npm ci when the lockfile changed, then esbuild into web/dist ---
WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/build.mjs
web: web/dist/index.html
web/node_modules/.sextant-stamp: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@
web/dist/index.html: web/node_modules/.sextant-stamp $(WEB_SRC)
	cd web && node build.mjs

# --- generated protobuf code -------------------------------------------------
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

# Keep generated sources: otherwise make deletes them as intermediates and
# every build recompiles all of lib/.
.SECONDARY: $(PROTO_C) $(PROTO_H) $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%.o,$(UNIT_SRC))

# Generated code is not ours to lint: build it with the plain warnings.
$(GEN)/%.pb-c.o: $(GEN)/%.pb-c.c $(PROTO_H)
	$(CC) $(CPPFLAGS) -std=c11 -Wall -Werror $(CFLAGS) $(SANFLAGS) -c -o $@ $<

# --- shared library ------------------------------------------------------------
$(BUILD)/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c -o $@ $<

$(LIBSX): $(LIB_O) $(PROTO_O)
	@rm -f $@
	ar rcs $@ $^

# --- programs ------------------------------------------------------------------
$(BIN)/sextant-ingest: $(patsubst %.c,$(BUILD)/%.o,$(INGEST_SRC)) $(LIBSX)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/sextant-api: $(patsubst %.c,$(BUILD)/%.o,$(API_SRC)) $(LIBSX)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/sextant-sse: $(patsubst %.c,$(BUILD)/%.o,$(SSE_SRC)) $(LIBSX)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/sextant-persist: $(patsubst %.c,$(BUILD)/%.o,$(PERSIST_SRC)) $(LIBSX)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/sextant-rollup: $(patsubst %.c,$(BUILD)/%.o,$(ROLLUP_SRC)) $(LIBSX)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/sextantctl: $(patsubst %.c,$(BUILD)/%.o,$(CTL_SRC)) $(LIBSX)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- unit tests (cmocka) -------------------------------------------------------
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBSX)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit-bins: $(UNIT_BIN)

# --- benchmark tools (bench/NAME.c -> build/bench/NAME) -------------------------
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBSX)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcurl
bench-bins: $(BENCH_BIN)

# --- top-level commands --------------------------------------------------------
deps:
	@scripts/deps.sh

# make test: sanitized unit tests, then the real stack (nginx, Redis, PostgreSQL,
# every program) with the OpenTelemetry JS SDK. Ends with "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SANITIZER=address,undefined all unit-bins
	@scripts/run-tests.sh

run: deps all
	@SEXTANT_DEMO_USER=$${SEXTANT_DEMO_USER-admin@sextant.local} scripts/stack.sh run
up: deps all
	@SEXTANT_DEMO_USER=$${SEXTANT_DEMO_USER-admin@sextant.local} scripts/stack.sh up
down:
	@scripts/stack.sh down

bench: deps all bench-bins
	@scripts/bench.sh

FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sextant/sql \
	    $(DESTDIR)$(PREFIX)/share/sextant/nginx $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 $(addprefix $(BIN)/,$(PROGRAMS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 sql/*.sql $(DESTDIR)$(PREFIX)/share/sextant/sql/
	install -m 0644 nginx/* $(DESTDIR)$(PREFIX)/share/sextant/nginx/
	install -d $(DESTDIR)$(PREFIX)/share/sextant/dashboard/assets
	install -m 0644 web/dist/index.html $(DESTDIR)$(PREFIX)/share/sextant/dashboard/
	install -m 0644 web/dist/assets/* $(DESTDIR)$(PREFIX)/share/sextant/dashboard/assets/
	for f in systemd/*; do sed 's|@PREFIX@|$(PREFIX)|g' $$f > $(DESTDIR)$(PREFIX)/lib/systemd/system/$$(basename $$f); done

clean:
	rm -rf build build-san bin web/dist

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
