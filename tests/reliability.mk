# tests/reliability.mk -- issue 6: the reliability test machinery.
# Included from the top-level Makefile (`include tests/reliability.mk`).
#
#   make test-crash              kill -9 during ingest / acl sync / delete,
#                                CRASH_ITERS per operation (default 50), and
#                                CRASH_ITERS kills of `warden index` while it
#                                builds / writes the ANN index file
#   make fuzz                    every libFuzzer target for FUZZ_SECONDS
#                                (default 60) each, then replay regressions
#   make soak                    SOAK_SECONDS (default 300) of random writes
#                                checked against an oracle, 100k isolation
#                                queries, 1000 corruption trials, the TSan
#                                concurrency run and the full crash test
#   make test-reliability-short  the quick versions (run by `make test`):
#                                crash x5, index crash x8, fuzz regression
#                                replay + 10 s of fuzzing per target, TSan
#                                concurrency, full-disk test
#
# The cmocka tests tests/test_fault.c, test_concurrency.c and
# test_corruption.c are built and run by the generic test rules.  Fuzz
# targets and the TSan build compile the library sources with clang
# (build/fuzz, build/tsan): build/libwarden.a is gcc-built and carries no
# fuzzer or TSan instrumentation.

RL_CC    ?= clang
RL_CXX   ?= clang++
RL_INCS  := -I. -Iengine -Iengine/base -Iindex -Iacl -I/usr/include/x86_64-linux-gnu/openblas-pthread
RL_LIBS  := -lfaiss -llmdb -lroaring -ljansson -lyaml -lstemmer -licuuc -lopenblas -fopenmp -lstdc++ -lm -pthread
RL_CSRC  := $(wildcard engine/base/*.c engine/*.c index/*.c acl/*.c)
RL_XSRC  := $(wildcard index/*.cpp)
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 300
CRASH_ITERS  ?= 50

# ------------------------------------------------------------ fuzzing
RL_FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
RL_FUZZ_CF  := -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -pthread $(RL_INCS) $(RL_FUZZ_SAN) -fsanitize=fuzzer-no-link
RL_FUZZ_XF  := -std=c++17 -g -O1 -Wall -Wextra -Werror -pthread -fopenmp $(RL_INCS) $(RL_FUZZ_SAN) -fno-sanitize=vptr -fsanitize=fuzzer-no-link
RL_FUZZ_OBJS := $(patsubst %.c,build/fuzz/%.o,$(RL_CSRC)) $(patsubst %.cpp,build/fuzz/%.o,$(RL_XSRC))
FUZZ_TARGETS := config filter ingest records

build/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(RL_CC) $(RL_FUZZ_CF) -MMD -MP -c $< -o $@
build/fuzz/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(RL_CXX) $(RL_FUZZ_XF) -MMD -MP -c $< -o $@
build/fuzz/libwarden_fuzz.a: $(RL_FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libwarden_fuzz.a
	$(RL_CC) $(subst -fsanitize=fuzzer-no-link,-fsanitize=fuzzer,$(RL_FUZZ_CF)) $< \
	  build/fuzz/libwarden_fuzz.a $(RL_LIBS) -o $@

.PHONY: fuzz-build fuzz fuzz-replay
fuzz-build: $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_TARGETS))

# Replay every regression input and seed (no fuzzing): a crash fails.
fuzz-replay: fuzz-build
	@sh tests/reliability/fuzz.sh replay $(FUZZ_TARGETS)

fuzz: fuzz-build
	@sh tests/reliability/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ----------------------------------------------------- ThreadSanitizer
RL_TSAN_CF := -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -pthread $(RL_INCS) -fsanitize=thread
RL_TSAN_XF := -std=c++17 -g -O1 -Wall -Wextra -Werror -pthread -fopenmp $(RL_INCS) -fsanitize=thread
RL_TSAN_OBJS := $(patsubst %.c,build/tsan/%.o,$(RL_CSRC)) $(patsubst %.cpp,build/tsan/%.o,$(RL_XSRC))
build/tsan/%.o: %.c
	@mkdir -p $(dir $@)
	$(RL_CC) $(RL_TSAN_CF) -MMD -MP -c $< -o $@
build/tsan/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(RL_CXX) $(RL_TSAN_XF) -MMD -MP -c $< -o $@
build/tsan/libwarden.a: $(RL_TSAN_OBJS)
	@rm -f $@
	ar rcs $@ $^
build/tsan/test_concurrency: tests/test_concurrency.c build/tsan/libwarden.a
	$(RL_CC) $(RL_TSAN_CF) $< build/tsan/libwarden.a $(RL_LIBS) -lcmocka -o $@
# the ingest pipeline's worker thread (engine/ingest.h)
build/tsan/test_upsert: tests/test_upsert.c build/tsan/libwarden.a
	$(RL_CC) $(RL_TSAN_CF) $< build/tsan/libwarden.a $(RL_LIBS) -lcmocka -ljansson -o $@
# the CLI, for --vectors' reader thread (tools/ingest_npy.c)
build/tsan/warden: $(patsubst %.c,build/tsan/%.o,$(CLI_SRCS)) build/tsan/libwarden.a
	$(RL_CC) $(RL_TSAN_CF) $^ $(RL_LIBS) -o $@

.PHONY: test-tsan
test-tsan: build/tsan/test_concurrency
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/reliability/tsan.supp" \
	  WARDEN_TEST_QUICK=1 build/tsan/test_concurrency

# ------------------------------------------------------ soak and crash
build/rel/tests/crash/soak: tests/crash/soak.c build/libwarden.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ build/libwarden.a $(LIBS)

.PHONY: test-crash soak test-reliability-short test-fulldisk
test-crash: build/warden
	python3 tests/crash/crash.py --warden build/warden --iters $(CRASH_ITERS)
	/usr/bin/python3 tests/crash/index_crash.py --warden build/warden --iters $(CRASH_ITERS)

test-fulldisk: build/warden
	sh tests/reliability/fulldisk.sh build/warden

soak: all build/rel/tests/crash/soak build/rel/tests/test_concurrency build/rel/tests/test_corruption test-tsan
	build/rel/tests/crash/soak $(SOAK_SECONDS)
	WARDEN_ISOLATION_QUERIES=100000 build/rel/tests/test_concurrency
	WARDEN_CORRUPTION_TRIALS=1000 build/rel/tests/test_corruption
	python3 tests/crash/crash.py --warden build/warden --iters $(CRASH_ITERS)

test-reliability-short: build/warden fuzz-build build/tsan/test_concurrency build/tsan/test_upsert build/tsan/warden
	@sh tests/reliability/short.sh
