# fuzz.mk — libFuzzer targets for latentdb's parsers and decoders (tests/fuzz/README.md).
# Included by the top Makefile (`include tests/fuzz/fuzz.mk`), or used beside it:
#   make -f Makefile -f tests/fuzz/fuzz.mk fuzz
#
#   make fuzz-build                 builds build-fuzz/fuzz_<name> for every target
#   make fuzz [FUZZ_SECONDS=60]     runs each for FUZZ_SECONDS on a copy of its seeds
#   make fuzz FUZZ_TARGETS="npy inv"    only these targets
#   make fuzz-regress               runs each target once over tests/fuzz/regress/<name>-*
#   make fuzz-seeds                 remakes tests/fuzz/corpus (tests/fuzz/make_seeds.sh)
#
# Needs clang with its libFuzzer runtime (Debian: clang, libclang-rt-14-dev). The library
# is compiled again into build-fuzz/ with coverage and ASan + UBSan; nothing else of the
# build is touched. Variables are FUZZ_*; nothing the Makefile defines is redefined.

# restored at the end, so that including this file never changes `make`'s default goal
FUZZ_GOAL    := $(.DEFAULT_GOAL)
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -ffp-contract=off -O1 -g -fPIC -Iinclude -D_GNU_SOURCE -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
                $(FUZZ_EXTRA_CFLAGS)
FUZZ_LIBS    := $(if $(LIBS),$(LIBS),-llmdb -lzstd -lsqlite3 -lzip -lz -lcjson -lcrypto -lm -ldl -lpthread)
FUZZ_LIB_SRC := $(if $(LIB_SRC),$(LIB_SRC),$(wildcard common/*.c text/*.c sae/*.c db/*.c ingest/*.c query/*.c))
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_HDRS    := $(wildcard include/*.h common/*.h text/*.h sae/*.h db/*.h ingest/*.h query/*.h \
                  tests/fuzz/*.h)

# name and -max_len of each target
FUZZ_ALL     := safetensors npy npz config tokenizer tokblob fwd inv
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_MAXLEN_safetensors := 262144
FUZZ_MAXLEN_npy         := 65536
FUZZ_MAXLEN_npz         := 262144
FUZZ_MAXLEN_config      := 65536
FUZZ_MAXLEN_tokenizer   := 262144
FUZZ_MAXLEN_tokblob     := 262144
FUZZ_MAXLEN_fwd         := 65536
FUZZ_MAXLEN_inv         := 65536
FUZZ_BINS    := $(FUZZ_ALL:%=$(FUZZ_BUILD)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-regress fuzz-seeds fuzz-clean

$(FUZZ_BUILD)/obj/%.o: %.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

# the harnesses themselves are held to the project's warnings
$(FUZZ_BUILD)/obj/tests/fuzz/%.o: FUZZ_CFLAGS += -Wall -Wextra

$(FUZZ_BUILD)/libfuzzlatentdb.a: $(FUZZ_LIB_OBJ)
	@echo '*' > $(FUZZ_BUILD)/.gitignore  # keeps build-fuzz/ out of git status
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libfuzzlatentdb.a
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(FUZZ_LIBS)

# The seed maker (make_seeds.sh): a plain program over the same objects.
$(FUZZ_BUILD)/seedgen: $(FUZZ_BUILD)/obj/tests/fuzz/seedgen.o $(FUZZ_BUILD)/libfuzzlatentdb.a
	$(FUZZ_CC) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -o $@ $^ $(FUZZ_LIBS)

fuzz-build: $(FUZZ_BINS)

# Each target runs for FUZZ_SECONDS in one process on build-fuzz/corpus/<name> (a copy of
# tests/fuzz/corpus/<name>, so what it adds stays out of the repository); crashes go to
# build-fuzz/artifacts/<name>/, logs to build-fuzz/logs/<name>.log. Fails when any target
# found a crash, a leak, a timeout or an out-of-memory.
fuzz: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh \
	    $(foreach t,$(FUZZ_TARGETS),$(t):$(FUZZ_MAXLEN_$(t)))

fuzz-regress: $(FUZZ_BINS)
	@FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/run.sh --regress $(FUZZ_ALL)

fuzz-seeds: $(FUZZ_BUILD)/seedgen
	FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/make_seeds.sh

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

.DEFAULT_GOAL := $(FUZZ_GOAL)
