# arm64.mk -- cross build for arm64 (Graviton, Ampere) and its tests under
# qemu-user, included by the Makefile.
#
#   make arm64        libwarden (static and shared), the warden CLI and the
#                     unit tests, built for aarch64 in build/arm64/
#   make arm64-test   the same, then runs ARM64_TESTS under qemu-aarch64
#
# Needs Debian's cross toolchain, qemu-user and the arm64 -dev packages
# (tools/deps.sh arm64 installs them: dpkg --add-architecture arm64).
# The portable kernels (index/kernels.c without x86 SIMD) are what runs.

A64_CC  ?= aarch64-linux-gnu-gcc
A64_CXX ?= aarch64-linux-gnu-g++
A64_RUN ?= qemu-aarch64
A64_INCS := -I. -Iengine -Iengine/base -Iindex -Iacl -I/usr/include/aarch64-linux-gnu/openblas-pthread
A64_CF := $(CSTD) -O2 -g $(WARN) -fPIC -pthread $(A64_INCS)
A64_XF := -std=c++17 -O2 -g $(WARN) -fPIC -pthread -fopenmp $(A64_INCS)
# Debian 12 ships libfaiss for arm64 as a static library only
A64_LIBS := -L/usr/lib/aarch64-linux-gnu -lfaiss -llmdb -lroaring -ljansson -lyaml -lstemmer -licuuc -lopenblas \
            -fopenmp -lstdc++ -lm -pthread
A64_LIB_OBJS := $(patsubst %.c,build/arm64/%.o,$(LIB_SRCS)) \
                $(patsubst %.cpp,build/arm64/%.o,$(wildcard index/*.cpp))
A64_CLI_OBJS := $(patsubst %.c,build/arm64/%.o,$(CLI_SRCS))
# The tests run under qemu (about 1.5 minutes on 2 cores, plus 2-3 minutes
# of cross compiling).  Left out by default: test_ann (6.5 minutes of
# k-means under emulation), test_resolver (its timing asserts are set for
# native speed: under qemu two of them fail on time, not on answers), and
# test_fault, test_corruption, test_concurrency (thousands of child
# processes and fault points); none of them exercises architecture-
# dependent code the others do not.  make arm64-test ARM64_TESTS="..."
# runs any list (the binaries of every tests/test_*.c are built).
ARM64_TESTS ?= test_kernels test_topk test_scan test_filter test_range test_config \
               test_store test_harden test_oracle test_faiss_capi
A64_ALL_TESTS := $(patsubst tests/%.c,build/arm64/tests/%,$(TEST_SRCS))

.PHONY: arm64 arm64-deps arm64-test
arm64-deps:
	@sh tools/deps.sh arm64
arm64: arm64-deps build/arm64/libwarden.a build/arm64/libwarden.so build/arm64/warden \
       $(A64_ALL_TESTS)

build/arm64/%.o: %.c
	@mkdir -p $(dir $@)
	$(A64_CC) $(A64_CF) -MMD -MP -c $< -o $@
build/arm64/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(A64_CXX) $(A64_XF) -MMD -MP -c $< -o $@
build/arm64/libwarden.a: $(A64_LIB_OBJS)
	@rm -f $@
	aarch64-linux-gnu-ar rcs $@ $^
build/arm64/libwarden.so: $(A64_LIB_OBJS)
	$(A64_CXX) -shared -o $@ $^ $(A64_LIBS)
build/arm64/warden: $(A64_CLI_OBJS) build/arm64/libwarden.a
	$(A64_CC) $(A64_CF) -o $@ $(A64_CLI_OBJS) build/arm64/libwarden.a $(A64_LIBS)
build/arm64/tests/%: build/arm64/tests/%.o build/arm64/libwarden.a
	$(A64_CC) $(A64_CF) -o $@ $< build/arm64/libwarden.a $(A64_LIBS) -lcmocka
# the FAISS C API beyond what the library calls (see the Makefile)
build/arm64/tests/test_faiss_capi: build/arm64/tests/test_faiss_capi.o build/arm64/bench/faiss_capi_extra.o \
                                   build/arm64/libwarden.a
	$(A64_CC) $(A64_CF) -o $@ $< build/arm64/bench/faiss_capi_extra.o build/arm64/libwarden.a $(A64_LIBS) -lcmocka

arm64-test: arm64 build/check-access
	@sh tests/arm64/run.sh $(A64_RUN) $(ARM64_TESTS)
