# warden -- build, test, demo, bench.
#
#   make            libwarden.a, libwarden.so and the warden CLI in build/
#   make test       unit + oracle + CLI tests, then again under ASan+UBSan
#   make demo       the permission-aware retrieval demo (under a minute)
#   make bench      the side-by-side benchmark (quick), bench-full the long one
#
# Every target that needs Debian packages checks for them first
# (tools/deps.sh): as root it installs what is missing, otherwise it prints
# the exact apt-get command.

CC      ?= cc
CXX     ?= g++
OPT     ?= -O2 -g
WARN    := -Wall -Wextra -Werror
CSTD    := -std=c11 -D_GNU_SOURCE
# Library sources name the folder of every header they include
# ("base/hmap.h", "acl/acl.h", "index/ivf.h", "engine/store.h"; base/ is
# engine/base/): -I. and -Iengine resolve those.  The plain -I folders
# serve tools/, bench/ and tests/.  tests/layers.sh checks the arrows.
INCS    := -I. -Iengine -Iengine/base -Iindex -Iacl -I/usr/include/x86_64-linux-gnu/openblas-pthread
CFLAGS_ALL   := $(CSTD) $(OPT) $(WARN) -fPIC -pthread $(INCS) $(EXTRA_CFLAGS)
CXXFLAGS_ALL := -std=c++17 $(OPT) $(WARN) -fPIC -pthread -fopenmp $(INCS) $(EXTRA_CFLAGS)

# FAISS: Debian ships the C API headers but no libfaiss_c; we compile our own
# implementation of the C API functions the library calls
# (index/faiss_capi.cpp) unless the system has one.  The rest of the C API,
# which only the benchmarks and tests/test_faiss_capi use, is
# bench/faiss_capi_extra.cpp: linked into those binaries, not the library.
HAVE_FAISS_C := $(shell test -e /usr/lib/x86_64-linux-gnu/libfaiss_c.so -o -e /usr/local/lib/libfaiss_c.so && echo 1)
ifeq ($(HAVE_FAISS_C),1)
FAISS_LIBS := -lfaiss_c -lfaiss
CXX_SRCS :=
FAISS_EXTRA :=
else
FAISS_LIBS := -lfaiss
CXX_SRCS := $(wildcard index/*.cpp)
FAISS_EXTRA := bench/faiss_capi_extra.cpp
endif
FAISS_EXTRA_REL := $(patsubst %.cpp,build/rel/%.o,$(FAISS_EXTRA))
FAISS_EXTRA_SAN := $(patsubst %.cpp,build/san/%.o,$(FAISS_EXTRA))
LIBS := $(FAISS_LIBS) -llmdb -lroaring -ljansson -lyaml -lstemmer -licuuc -lopenblas -fopenmp -lstdc++ -lm -pthread

LIB_SRCS := $(wildcard engine/base/*.c engine/*.c index/*.c acl/*.c)
CLI_SRCS := $(wildcard tools/*.c)
TEST_SRCS := $(wildcard tests/test_*.c)

# Two build flavours: release (build/rel) and sanitized (build/san).
define objs
$(patsubst %.c,build/$(1)/%.o,$(2)) $(patsubst %.cpp,build/$(1)/%.o,$(3))
endef

REL_LIB_OBJS := $(call objs,rel,$(LIB_SRCS),$(CXX_SRCS))
SAN_LIB_OBJS := $(call objs,san,$(LIB_SRCS),$(CXX_SRCS))
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all deps test demo bench bench-full bench-graph bench-scale clean
all: deps build/warden build/libwarden.a build/libwarden.so

deps:
	@sh tools/deps.sh build

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@
build/rel/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_ALL) -MMD -MP -c $< -o $@
build/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SAN_FLAGS) -MMD -MP -c $< -o $@
build/san/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_ALL) $(SAN_FLAGS) -MMD -MP -c $< -o $@

build/libwarden.a: $(REL_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^
build/libwarden.so: $(REL_LIB_OBJS) engine/libwarden.map
	$(CXX) -shared -o $@ $(REL_LIB_OBJS) -Wl,--version-script=engine/libwarden.map $(LIBS)
build/san/libwarden.a: $(SAN_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The CLI's allocator: jemalloc when Debian's libjemalloc2 is installed
# (tools/deps.sh build asks for it), else the C library's; `make
# CLI_MALLOC=` builds without it.  glibc's malloc costs the ingest a
# quarter of its user time (1M x 384, README "Ingest throughput").  Only
# the CLI: the library leaves the allocator to the process that loads it.
CLI_MALLOC ?= $(firstword $(wildcard /usr/lib/$(shell $(CC) -dumpmachine)/libjemalloc.so.2))
# relinked when that choice changes (the package installed after a build)
build/cli_malloc.stamp: cli-malloc-check
	@mkdir -p build
	@echo '$(CLI_MALLOC)' | cmp -s - $@ || echo '$(CLI_MALLOC)' > $@
.PHONY: cli-malloc-check
cli-malloc-check:
build/warden: $(call objs,rel,$(CLI_SRCS),) build/libwarden.a build/cli_malloc.stamp
	$(CC) $(CFLAGS_ALL) -o $@ $(call objs,rel,$(CLI_SRCS),) $(CLI_MALLOC) build/libwarden.a $(LIBS)
build/san/warden: $(call objs,san,$(CLI_SRCS),) build/san/libwarden.a
	$(CC) $(CFLAGS_ALL) $(SAN_FLAGS) -o $@ $(call objs,san,$(CLI_SRCS),) build/san/libwarden.a $(LIBS)

# The bench driver (measures warden through the C API) and the example
# command resolver.
build/warden_bench: bench/warden_bench.c $(FAISS_EXTRA_REL) build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< $(FAISS_EXTRA_REL) build/libwarden.a $(LIBS)
build/exact_scan: bench/exact_scan.c $(FAISS_EXTRA_REL) build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< $(FAISS_EXTRA_REL) build/libwarden.a $(LIBS)
build/perm_bench: bench/perm_bench.c build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< build/libwarden.a $(LIBS)
build/lexical_bench: bench/lexical_bench.c build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< build/libwarden.a $(LIBS)
# issue 15: the scale run (not in CI): make bench-scale [N=10000000] [Q=200] [FROM=STEP] [WORK=DIR]
# [GRAPH=off]; bench/scale/run.sh says what it measures
build/scale_query: bench/scale/scale_query.c build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< build/libwarden.a $(LIBS)
build/bench/npy2jsonl: bench/scale/npy2jsonl.c
	@mkdir -p build/bench
	$(CC) $(CFLAGS_ALL) -o $@ $<
bench-scale: build/warden build/scale_query build/bench/npy2jsonl
	@sh tools/deps.sh bench
	N=$(or $(N),10000000) Q=$(or $(Q),200) GRAPH=$(or $(GRAPH),on) sh bench/scale/run.sh
# issue 14: the graph-index bench driver (bench/graph_run.sh)
build/graph_bench: bench/graph_bench.c build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< build/libwarden.a $(LIBS)
# the graph walk alone, what the planner's graph price was fitted on
# (bench/graph_walk.c, bench/graph_walk_fit.py)
build/graph_walk: bench/graph_walk.c build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< build/libwarden.a $(LIBS)
build/check-access: tools/resolvers/check_access.c
	$(CC) $(CFLAGS_ALL) -o $@ $< -ljansson

# Unit tests: one binary per tests/test_*.c, linked with cmocka.
REL_TESTS := $(patsubst tests/%.c,build/rel/tests/%,$(TEST_SRCS))
SAN_TESTS := $(patsubst tests/%.c,build/san/tests/%,$(TEST_SRCS))
build/rel/tests/%: build/rel/tests/%.o build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< build/libwarden.a $(LIBS) -lcmocka
build/san/tests/%: build/san/tests/%.o build/san/libwarden.a
	$(CC) $(CFLAGS_ALL) $(SAN_FLAGS) -o $@ $< build/san/libwarden.a $(LIBS) -lcmocka
# test_faiss_capi tests the whole C API layer: the library's part and the
# extra one.
build/rel/tests/test_faiss_capi: build/rel/tests/test_faiss_capi.o $(FAISS_EXTRA_REL) build/libwarden.a
	$(CC) $(CFLAGS_ALL) -o $@ $< $(FAISS_EXTRA_REL) build/libwarden.a $(LIBS) -lcmocka
build/san/tests/test_faiss_capi: build/san/tests/test_faiss_capi.o $(FAISS_EXTRA_SAN) build/san/libwarden.a
	$(CC) $(CFLAGS_ALL) $(SAN_FLAGS) -o $@ $< $(FAISS_EXTRA_SAN) build/san/libwarden.a $(LIBS) -lcmocka

# The README's test command.
test:
	@sh tools/deps.sh test
	@$(MAKE) --no-print-directory all build/check-access $(REL_TESTS) build/san/warden $(SAN_TESTS)
	@$(MAKE) --no-print-directory build/warden fuzz-build build/tsan/test_concurrency build/tsan/test_upsert build/tsan/warden
	@sh tests/run.sh

demo:
	@sh tools/deps.sh demo
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh

bench:
	@sh tools/deps.sh bench
	@$(MAKE) --no-print-directory all build/warden_bench build/exact_scan build/perm_bench
	@sh bench/run.sh quick

bench-full:
	@sh tools/deps.sh bench
	@$(MAKE) --no-print-directory all build/warden_bench build/exact_scan build/perm_bench
	@sh bench/run.sh full

clean:
	rm -rf build

include tests/reliability.mk
# hardening (issue 13): make arm64 / make arm64-test
include arm64.mk

-include $(shell find build -name '*.d' 2>/dev/null)

# issue 14: warden's graph index against FAISS 1.12 AVX-512 and 1.7.3 on the
# image-784 workload (bench/graph_run.sh)
bench-graph:
	@sh tools/deps.sh bench
	@$(MAKE) --no-print-directory all build/graph_bench
	sh bench/graph_run.sh
