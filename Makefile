# Sluice build. Out-of-tree objects under $(BUILD); -j safe; incremental via -MMD.
#   make            build/bin/{sluice-aggregator,sluice-agent,sluice}
#   make run        install what is missing, build, start the single-node demo stack
#   make test       install test dependencies, build, run unit + integration tests
#   make asan       the same binaries with ASan+UBSan under build/asan
#   make test-asan  the whole suite against the ASan+UBSan build
#   make fuzz       libFuzzer targets under build/fuzz; make fuzz-run runs each briefly
#   make bench      the benchmarks in tests/bench
#   make format     clang-format every C file in place

SAN   ?= 0
FUZZ  ?= 0
PORT  ?= 3100
PYTHON ?= /usr/bin/python3

ifeq ($(FUZZ),1)
BUILD ?= build/fuzz
CC     = clang
OPT   ?= -O1
SANFLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DSL_FUZZING=1
else ifeq ($(SAN),1)
BUILD ?= build/asan
OPT   ?= -O1
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD ?= build
OPT   ?= -O2
SANFLAGS =
endif

PKGS := libuv libcurl msgpack libzstd zlib yaml-0.1 libxxhash openssl libpcre2-8 jansson snappy yajl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?=
CFLAGS  += -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(SANFLAGS)
DEPFLAGS = -MMD -MP
LDLIBS  += $(PKG_LIBS) -lhttp_parser -lpthread -lm
LDFLAGS += $(SANFLAGS)

COMMON_SRCS := $(sort $(wildcard common/*.c))
AGENT_SRCS  := $(sort $(filter-out agent/main.c,$(shell find agent -name '*.c' 2>/dev/null)))
AGG_SRCS    := $(sort $(filter-out aggregator/main.c aggregator/cli/%,$(shell find aggregator -name '*.c' 2>/dev/null)))
CLI_SRCS    := $(sort $(filter-out aggregator/cli/main.c,$(wildcard aggregator/cli/*.c)))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_COMMON := $(BUILD)/lib/libsluice_common.a
LIB_AGENT  := $(BUILD)/lib/libsluice_agent.a
LIB_AGG    := $(BUILD)/lib/libsluice_aggregator.a
LIB_CLI    := $(BUILD)/lib/libsluice_cli.a

BINS := $(BUILD)/bin/sluice-aggregator $(BUILD)/bin/sluice-agent $(BUILD)/bin/sluice \
        $(BUILD)/bin/sluice-loggen

UNIT_SRCS  := $(sort $(shell find tests/unit -name 'test_*.c' 2>/dev/null))
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
# Helper programs the integration tests run (e.g. the object-store driver).
INTEG_SRCS := $(sort $(wildcard tests/integration/*.c))
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INTEG_SRCS))

.PHONY: all deps run test unit integration asan test-asan fuzz fuzz-run bench format format-check clean
.DEFAULT_GOAL := all
# Keep objects of tests and fuzz targets (make would delete them as intermediates).
.SECONDARY:

ifeq ($(FUZZ),1)
all: $(FUZZ_BINS)
else
all: $(BINS) $(UNIT_BINS) $(INTEG_BINS)
endif

deps:
	@scripts/deps.sh build

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIB_COMMON): $(call obj,$(COMMON_SRCS))
$(LIB_AGENT): $(call obj,$(AGENT_SRCS))
$(LIB_AGG): $(call obj,$(AGG_SRCS))
$(LIB_CLI): $(call obj,$(CLI_SRCS))
$(BUILD)/lib/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/sluice-aggregator: $(call obj,aggregator/main.c) $(LIB_AGG) $(LIB_COMMON)
$(BUILD)/bin/sluice-agent: $(call obj,agent/main.c) $(LIB_AGENT) $(LIB_COMMON)
$(BUILD)/bin/sluice: $(call obj,aggregator/cli/main.c) $(LIB_CLI) $(LIB_COMMON)
# The deterministic CRI log generator: benchmarks, tests and the `make run` demo.
$(BUILD)/bin/sluice-loggen: $(call obj,tests/bench/loggen.c) $(LIB_COMMON)
$(BINS):
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: tests/unit/<part>/test_x.c links the part's library and common.
$(BUILD)/tests/unit/common/%: $(call obj,tests/unit/common/%.c) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tests/unit/agent/%: $(call obj,tests/unit/agent/%.c) $(LIB_AGENT) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tests/unit/aggregator/%: $(call obj,tests/unit/aggregator/%.c) $(LIB_AGG) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tests/unit/cli/%: $(call obj,tests/unit/cli/%.c) $(LIB_CLI) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/integration/%: $(call obj,tests/integration/%.c) $(LIB_AGG) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz targets link every library, so one target may exercise any parser.
$(BUILD)/fuzz/%: $(call obj,tests/fuzz/%.c) $(LIB_AGENT) $(LIB_AGG) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

run:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory $(BINS)
	@scripts/run.sh $(PORT)

# Every unit binary (scripts/run-unit.sh also points the SigV4 test at its npm vectors).
unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(BUILD)

integration: $(BINS) $(INTEG_BINS)
	SLUICE_BIN=$(abspath $(BUILD)/bin) $(PYTHON) -m pytest -q tests/integration

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit integration

asan:
	@$(MAKE) --no-print-directory SAN=1 all

test-asan:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory SAN=1 unit integration

fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory FUZZ=1 all

fuzz-run: fuzz
	@scripts/fuzz-run.sh build/fuzz $${FUZZ_SECONDS:-10}

# Every benchmark in turn (about 20 minutes); each script also runs alone.
BENCH_PY := push_bench.py store_bench.py logql.py query_split.py labels.py tail_bench.py meta_bench.py
bench: $(BINS)
	@tests/bench/run.sh $(abspath $(BUILD)/bin)
	@set -e; for b in $(BENCH_PY); do $(PYTHON) tests/bench/$$b $(abspath $(BUILD)/bin); done

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
