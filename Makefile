# finch: build, test, demo, bench.
#   make            build/libfinch.a and build/finch
#   make test       every CPU test; ends with "N passed, N failed, N skipped"
#   make demo       the Fashion-MNIST robust-training demo
#   make bench      CPU kernels, the data path and a push (build/bench.json, bench_loader.json, bench_push.json)
#   make asan       the tests under AddressSanitizer and UBSan
#   make fuzz       every file reader under libFuzzer + ASan + UBSan, FUZZ_TIME seconds each (default 60);
#                   make fuzz-smoke: a few seconds each (CI); fuzz/README.md
#   make examples   the example programs (examples/README.md)
#   make install    PREFIX=/usr/local: libfinch.a and .so, the headers, finch, and finch.pc for pkg-config
# Options: CUDA=0|1 (default: 1 when nvcc is found), CUDA_HOME=..., CUDNN_HOME=..., CUDA_ARCH=..., ARCH=...,
#          MPI=0|1 (default: 1 when mpicc is found), NCCL_HOME=... (NCCL is used when nccl.h is found, with CUDA)

CC      ?= gcc
ARCH    ?= -march=native
OPT     ?= -O3
# -fPIC: the objects also make the shared libfinch.so (make install); -fno-semantic-interposition keeps
# calls inside the library direct, as in the static build; -fno-trapping-math lets a loop that selects
# on a float comparison (ReLU's gradient, the fused batch norm's, the attacks' steps) vectorise, where
# the default keeps a branch per element in case a comparison raises a floating-point exception that
# nothing here traps; -fno-math-errno does the same for sqrt (Adam's step), whose errno nothing reads
# (the values computed are the same)
CFLAGS  += -std=c11 $(OPT) $(ARCH) -fopenmp -fPIC -fno-semantic-interposition -fno-trapping-math -fno-math-errno -Wall -Wextra -D_DEFAULT_SOURCE -I. -MMD -MP
LDLIBS  += -lgsl -llbfgsb -lopenblas -lcjson -lpng -ljpeg -lz -lm -lpthread
LDFLAGS += -fopenmp
BUILD   ?= build

NVCC    ?= $(shell command -v nvcc 2>/dev/null)
ifeq ($(origin CUDA), undefined)
  CUDA := $(if $(NVCC),1,0)
endif

# MPI (docs/DISTRIBUTED.md): Open MPI's compile and link flags, from its wrapper
MPICC ?= $(shell command -v mpicc 2>/dev/null)
ifeq ($(origin MPI), undefined)
  MPI := $(if $(MPICC),1,0)
endif
ifeq ($(MPI),1)
  CFLAGS += -DFINCH_MPI $(shell $(MPICC) --showme:compile)
  LDLIBS += $(shell $(MPICC) --showme:link)
endif

SRC_DIRS := core core/cpu layers models eval dist train attack data
LIB_SRC  := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
CLI_SRC  := $(filter-out tools/bench_blas.c,$(wildcard tools/*.c))   # bench_blas.c: its own program (tools/bench_blas.sh)
TEST_SRC := $(wildcard tests/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

ifeq ($(CUDA),1)
  CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDNN_HOME ?= $(CUDA_HOME)
  CUDA_ARCH  ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
  NVCCFLAGS  += -O3 -std=c++17 $(CUDA_ARCH) -I. -I$(CUDNN_HOME)/include -Xcompiler -Wall,-Wextra,-fPIC -DFINCH_CUDA
  CFLAGS     += -DFINCH_CUDA -I$(CUDA_HOME)/include
  LIB_OBJ    += $(patsubst %.cu,$(BUILD)/%.o,$(wildcard cuda/*.cu))
  # cuDNN by its versioned name: pip-installed cuDNN ships no unversioned libcudnn.so
  LDLIBS     += -L$(CUDA_HOME)/lib64 -L$(CUDNN_HOME)/lib -L$(CUDNN_HOME)/lib64 -l:libcudnn.so.9 -lcublas -lcudart -lstdc++ \
                -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDNN_HOME)/lib -Wl,-rpath,$(CUDNN_HOME)/lib64
  # NCCL for CUDA tensors across ranks: beside CUDA, in /usr/local, or from pip (nvidia-nccl)
  NCCL_HOME ?= $(firstword $(foreach d,$(CUDA_HOME) /usr/local /usr $(wildcard /root/.pyenv/versions/*/lib/python3*/site-packages/nvidia/nccl),\
                 $(if $(wildcard $(d)/include/nccl.h),$(d))))
  ifneq ($(NCCL_HOME),)
    NCCL_LIB := $(firstword $(foreach d,lib lib64,$(if $(wildcard $(NCCL_HOME)/$(d)/libnccl.so*),$(NCCL_HOME)/$(d))))
    ifneq ($(NCCL_LIB),)
      CFLAGS += -DFINCH_NCCL -I$(NCCL_HOME)/include
      LDLIBS += -L$(NCCL_LIB) -l:$(notdir $(firstword $(wildcard $(NCCL_LIB)/libnccl.so*))) -Wl,-rpath,$(NCCL_LIB)
    endif
  endif
endif

.PHONY: all deps test demo bench asan fuzz fuzz-smoke fuzz-build clean examples install
all: $(BUILD)/libfinch.a $(BUILD)/finch

# Objects depend on the flags they were built with, so switching CUDA=0/1 rebuilds them.
FLAGS_STAMP := $(BUILD)/.flags-$(shell echo '$(CC) $(CFLAGS) $(NVCCFLAGS)' | cksum | cut -d' ' -f1)
$(FLAGS_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/.flags-* && touch $@

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/libfinch.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libfinch.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libfinch.so.$(VERSION_MAJOR) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/finch: $(CLI_OBJ) $(BUILD)/libfinch.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/finch_tests: $(TEST_OBJ) $(BUILD)/libfinch.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The example programs (examples/README.md): built against the library as a user's program is,
# and run by make test (tests/test_examples.c), so that none can rot.
examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(BUILD)/libfinch.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libfinch.a -o $@ $(LDFLAGS) $(LDLIBS)

# Debian packages the build and the demo need; installed when missing (as root), else the
# exact apt-get line is printed.
DEB_PKGS := libopenblas-dev libgsl-dev liblbfgsb-dev gnuplot-nox zlib1g-dev libpng-dev libjpeg62-turbo-dev libcjson-dev dataset-fashion-mnist \
            libopenmpi-dev openmpi-bin
deps:
	@sh tools/install_deps.sh $(DEB_PKGS)

# With CUDA on, the CPU-only build is compiled too (make asan runs its tests), so neither can rot.
test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/finch_tests examples
ifeq ($(CUDA),1)
	@$(MAKE) --no-print-directory CUDA=0 BUILD=$(BUILD)-cpu $(BUILD)-cpu/libfinch.a $(BUILD)-cpu/finch $(BUILD)-cpu/finch_tests
endif
	@$(BUILD)/finch_tests

demo: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/finch demo

bench: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/finch bench --json $(BUILD)/bench.json
	$(BUILD)/finch bench --loader --json $(BUILD)/bench_loader.json
	$(BUILD)/finch bench --push --json $(BUILD)/bench_push.json
	$(BUILD)/finch bench --attacks --json $(BUILD)/bench_attacks.json

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fopenmp -fsanitize=address,undefined" CUDA=0 build-asan/finch_tests build-asan/finch examples
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 FINCH_BIN=build-asan/finch build-asan/finch_tests

# make install PREFIX=...: the libraries, every library header under include/finch/ (the public,
# stable ones are README's), the finch program and finch.pc; then cc prog.c $(pkg-config --cflags
# --libs finch) builds a program of yours (tests/test_examples.c does exactly that).
PREFIX  ?= /usr/local
VERSION := $(shell sed -n 's/^\#define FINCH_VERSION "\(.*\)"/\1/p' core/finch.h)
VERSION_MAJOR := $(firstword $(subst ., ,$(VERSION)))
LIB_HDRS := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.h))
install: all $(BUILD)/libfinch.so
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(BUILD)/libfinch.a $(DESTDIR)$(PREFIX)/lib/libfinch.a
	install -m 755 $(BUILD)/libfinch.so $(DESTDIR)$(PREFIX)/lib/libfinch.so.$(VERSION)
	ln -sf libfinch.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libfinch.so.$(VERSION_MAJOR)
	ln -sf libfinch.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libfinch.so
	for h in $(LIB_HDRS); do install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/finch/$$h; done
	install -m 755 $(BUILD)/finch $(DESTDIR)$(PREFIX)/bin/finch
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(VERSION)|; s|@LIBS_PRIVATE@|$(LDFLAGS) $(filter-out -lopenblas -lcjson -lpng -ljpeg -lz,$(LDLIBS))|' \
	    tools/finch.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/finch.pc

# The readers under libFuzzer (clang): the library instrumented for coverage (fuzzer-no-link) and
# the sanitizers, one binary per reader (fuzz/fuzz_<reader>.c). At -O1 clang does not vectorise,
# so it would warn on every `omp simd` loop it cannot honour (-Wpass-failed): not a finding here.
FUZZ_READERS := safetensors model checkpoint cache idx png jpeg cub split rundir benchmark market report
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_TIME    ?= 60
fuzz-build:
	@sh tools/install_deps.sh $(DEB_PKGS) clang libclang-rt-14-dev libomp-dev   # libFuzzer and the sanitizer runtimes: libclang-rt
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang CUDA=0 MPI=0 ARCH= OPT="-O1 -g -Wno-pass-failed -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	    LDFLAGS="-fopenmp -fsanitize=fuzzer $(FUZZ_SAN)" $(FUZZ_READERS:%=build-fuzz/fuzz_%)

$(BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(BUILD)/libfinch.a
	$(CC) $(CFLAGS) $< $(if $(findstring rundir,$@),tools/run_dir.c) $(if $(findstring benchmark,$@),tools/bench_report.c) $(if $(findstring report,$@),tools/study_report.c) $(BUILD)/libfinch.a -o $@ $(LDFLAGS) $(LDLIBS)

# fuzz/make_seeds.c writes the seed corpora with finch's own writers (committed under fuzz/corpus).
$(BUILD)/fuzz_seeds: fuzz/make_seeds.c $(BUILD)/libfinch.a
	$(CC) $(CFLAGS) $< $(BUILD)/libfinch.a -o $@ $(LDFLAGS) $(LDLIBS)

fuzz: fuzz-build
	@sh tools/fuzz.sh $(FUZZ_TIME) $(FUZZ_READERS)

fuzz-smoke: fuzz-build
	@sh tools/fuzz.sh 5 $(FUZZ_READERS)

clean:
	rm -rf build build-cpu build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
