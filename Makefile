# colorize: one binary, its kernels (AVX2+FMA on x86-64, portable vectors
# everywhere, plain scalar references) chosen at run time.
#   make            build ./colorize (make CC=aarch64-linux-gnu-gcc: a cross
#                   build, in build-aarch64-linux-gnu/)
#   make test       Check suite, then again under ASan+UBSan (leaks on)
#   make test-noavx2  SIMD and end-to-end tests on an emulated CPU without AVX2
#   make test-aarch64  the same cross-built for aarch64, under qemu-aarch64
#   make bench      kernel and training benchmarks
#   make fuzz       libFuzzer on the pickle reader (clang); fuzz-pnm, fuzz-model,
#                   fuzz-png, fuzz-jpeg the PGM/PPM reader, the model file, the
#                   PNG and JPEG readers
#   make coverage   the Check suite built with gcov; per-file line coverage of the
#                   library, and every line no test reaches in build-cov/uncovered.txt
#   make run        build, fetch CIFAR-10 if DATA is absent, run the task
#   make model      train the built-in model on DATA, into models/builtin.bin
#   make format-check  every source as the checked-in .clang-format has it

CC      ?= gcc
WERROR  ?= -Werror
CFLAGS  ?= -O3 -g
# How the compiler takes OpenMP, and what the program links for it. Apple's
# clang has no OpenMP runtime of its own: on macOS the default is Homebrew's
# libomp (brew install libomp; README, "Building on macOS").
ifeq ($(shell uname -s),Darwin)
LIBOMP      ?= $(shell brew --prefix libomp 2>/dev/null || echo /opt/homebrew/opt/libomp)
OPENMP      ?= -Xpreprocessor -fopenmp -I$(LIBOMP)/include
OPENMP_LIBS ?= -L$(LIBOMP)/lib -lomp
endif
OPENMP      ?= -fopenmp
OPENMP_LIBS ?=
# fp-contract=off: the compiler never fuses a*b+c on its own, so the scalar
# and portable paths round the same way on every machine, and results do not
# depend on the build.
BASEFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) $(OPENMP) -ffp-contract=off -I. -I$(GEN)
# gcc turns short copy loops (a pixel's channels) into memcpy calls, which
# cost more than the copy; keep them loops where the compiler has the flag.
NO_MEMCPY_IDIOM := $(shell $(CC) -Werror -fno-tree-loop-distribute-patterns -x c -c /dev/null -o /dev/null 2>/dev/null && echo -fno-tree-loop-distribute-patterns)
BASEFLAGS += $(NO_MEMCPY_IDIOM)
AVX2FLAGS = -mavx2 -mfma
LDLIBS    = $(OPENMP_LIBS) -lm

# The machine the compiler builds for, as it says (x86_64-linux-gnu,
# aarch64-linux-gnu, arm64-apple-darwin23...). Only an x86-64 build compiles
# the AVX2 kernels (*_avx2.c, with -mavx2 -mfma); any other tells the sources,
# which guard them too. A build for another machine than this one (make
# CC=aarch64-linux-gnu-gcc on x86-64) gets a tree of its own, program
# included, so that its objects never mix with the native ones.
TARGET     := $(shell $(CC) -dumpmachine)
TARGET_CPU := $(firstword $(subst -, ,$(TARGET)))
ifeq ($(TARGET_CPU),x86_64)
AVX2_SRCS = $(wildcard simd/*_avx2.c)
else
BASEFLAGS += -DCOLORIZE_NO_AVX2
endif
ifeq ($(TARGET_CPU),$(shell uname -m))
B       = build
PROGRAM = colorize
else
B       = build-$(TARGET)
PROGRAM = $(B)/colorize
endif

# gcc 12.2 for aarch64 (Debian 12's) crashes vectorising a double fmax or
# fmin reduction over floats (an internal compiler error in
# vect_transform_reduction), which only the tests' reference loops contain:
# there, the test programs (not the library) are built without the loop
# vectoriser.
ifeq ($(TARGET_CPU),aarch64)
TEST_CFLAGS = -fno-tree-vectorize
endif

# libpng and libjpeg-turbo (photo_png.c, photo_jpeg.c), through pkg-config:
# for a cross build, the target's own .pc files (Debian's multiarch
# /usr/lib/TARGET/pkgconfig: libpng-dev:arm64 libjpeg62-turbo-dev:arm64);
# a static link takes their own dependencies too (zlib).
ifneq ($(B),build)
PKG_CONFIG ?= PKG_CONFIG_LIBDIR=/usr/lib/$(TARGET)/pkgconfig:/usr/share/pkgconfig pkg-config
endif
PKG_CONFIG  ?= pkg-config
PKG_STATIC   = $(if $(findstring -static,$(LDFLAGS)),--static)
PHOTO_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpng libjpeg 2>/dev/null)
PHOTO_LIBS   := $(shell $(PKG_CONFIG) $(PKG_STATIC) --libs libpng libjpeg 2>/dev/null || \
                  echo -lpng16 -ljpeg -lz)
BASEFLAGS += $(PHOTO_CFLAGS)
LDLIBS    += $(PHOTO_LIBS)

# The built-in model: models/builtin.bin as a list of numbers that
# builtin_model.c includes, written by tools/bin2c.c, a program for the
# machine that builds (HOSTCC: a cross build runs it here), into a folder of
# the build tree on every compiler's include path.
HOSTCC ?= cc
GEN    = $(B)/gen
BUILTIN_INC = $(GEN)/builtin_model.inc

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lpthread -lm)

# The program's front end, which alone prints and chooses exit statuses:
# main (colorize.c), one file per command (cmd_*.c), the whole task's steps
# (run_*.c) and the command line's services beneath them all (cli.c).
# Everything else is the library.
FRONT_SRCS = colorize.c cmd_info.c cmd_palette.c cmd_predict.c cmd_run.c run_plan.c run_train.c \
             run_outputs.c cli.c
LIB_SRCS   = $(filter-out $(FRONT_SRCS),$(wildcard *.c)) \
             $(filter-out %_avx2.c,$(wildcard simd/*.c)) $(AVX2_SRCS)
TEST_SRCS  = $(wildcard tests/test_*.c)
BENCH_SRCS = $(wildcard tests/bench_*.c)

# Three build trees: the optimised one ($(B), above), one with sanitizers,
# one counting lines.
BA = build-asan
BC = build-cov
SANFLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# -O0 so that each source line keeps its own count; atomic counters because
# OpenMP threads share them.
COVFLAGS = -O0 -g --coverage -fprofile-update=atomic

LIB_OBJS   = $(LIB_SRCS:%.c=$(B)/%.o)
LIB_OBJS_A = $(LIB_SRCS:%.c=$(BA)/%.o)
TESTS      = $(TEST_SRCS:tests/%.c=$(B)/tests/%)
TESTS_A    = $(TEST_SRCS:tests/%.c=$(BA)/tests/%)
LIB_OBJS_C = $(LIB_SRCS:%.c=$(BC)/%.o)
TESTS_C    = $(TEST_SRCS:tests/%.c=$(BC)/tests/%)
BENCHES    = $(BENCH_SRCS:tests/%.c=$(B)/tests/%)


.PHONY: all test test-fast test-asan test-noavx2 test-aarch64 emulated-tests coverage bench fuzz \
        run model clean format format-check
all: $(PROGRAM)

$(PROGRAM): $(FRONT_SRCS:%.c=$(B)/%.o) $(LIB_OBJS)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tools/bin2c: tools/bin2c.c
	@mkdir -p $(dir $@)
	$(HOSTCC) -O2 -o $@ $<

$(BUILTIN_INC): models/builtin.bin $(B)/tools/bin2c
	@mkdir -p $(dir $@)
	$(B)/tools/bin2c $< $@

# Every tree's builtin_model.o includes the list (build-fuzz's: below).
$(B)/builtin_model.o $(BA)/builtin_model.o $(BC)/builtin_model.o: $(BUILTIN_INC)

$(B)/%.o: %.c $(wildcard *.h simd/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(if $(findstring _avx2,$<),$(AVX2FLAGS)) -c -o $@ $<

$(BA)/%.o: %.c $(wildcard *.h simd/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(SANFLAGS) $(if $(findstring _avx2,$<),$(AVX2FLAGS)) -c -o $@ $<

$(BA)/colorize: $(FRONT_SRCS:%.c=$(BA)/%.o) $(LIB_OBJS_A)
	$(CC) $(BASEFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/%.c $(LIB_OBJS) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(TEST_CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) \
	  $(CHECK_LIBS) $(LDLIBS)

# Benchmarks need no Check: they link alone, so they run where Check is absent.
$(B)/tests/bench_%: tests/bench_%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(BA)/tests/%: tests/%.c $(LIB_OBJS_A) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(SANFLAGS) $(CHECK_CFLAGS) -o $@ $< $(LIB_OBJS_A) $(CHECK_LIBS) $(LDLIBS)

$(BC)/%.o: %.c $(wildcard *.h simd/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(COVFLAGS) $(if $(findstring _avx2,$<),$(AVX2FLAGS)) -c -o $@ $<

$(BC)/colorize: $(FRONT_SRCS:%.c=$(BC)/%.o) $(LIB_OBJS_C)
	$(CC) $(BASEFLAGS) $(COVFLAGS) -o $@ $^ $(LDLIBS)

$(BC)/tests/%: tests/%.c $(LIB_OBJS_C) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(COVFLAGS) $(CHECK_CFLAGS) -o $@ $< $(LIB_OBJS_C) $(CHECK_LIBS) $(LDLIBS)

# LD_PRELOAD shims that tests put under the program (tests/shim_*.c), built
# beside the test programs of each tree, plain: no sanitizers, no coverage.
SHIM_FLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -O2 -fPIC -shared
$(B)/tests/shim_%.so: tests/shim_%.c
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_FLAGS) -o $@ $< -ldl
$(BA)/tests/shim_%.so: tests/shim_%.c
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_FLAGS) -o $@ $< -ldl
$(BC)/tests/shim_%.so: tests/shim_%.c
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_FLAGS) -o $@ $< -ldl
$(B)/tests/test_cli_files: $(B)/tests/shim_sync.so
$(BA)/tests/test_cli_files: $(BA)/tests/shim_sync.so
$(BC)/tests/test_cli_files: $(BC)/tests/shim_sync.so

# Each test program is one Check runner; run them all, report, fail if any failed.
test: test-fast test-asan

test-fast: $(PROGRAM) $(TESTS)
	@COLORIZE_BIN=./$(PROGRAM) tests/run_all.sh $(TESTS)

test-asan: $(BA)/colorize $(TESTS_A)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  COLORIZE_BIN=$(BA)/colorize CK_TIMEOUT_MULTIPLIER=10 tests/run_all.sh $(TESTS_A)

# The kernel, k-means and whole-program tests on an emulated CPU without AVX2
# (qemu-user's Nehalem: SSE4.2, no AVX): the run-time dispatch must choose the
# portable kernels, and no code may use an instruction that CPU lacks.
# test_cli* train whole (tiny) runs through the program, so the network's
# portable path is covered; test_nn's thousands of steps would take minutes
# under emulation. test_kernels says it skipped its AVX2 comparisons when the
# CPU has no AVX2; without that line the emulation did not hide AVX2.
QEMU_NOAVX2  = qemu-x86_64 -cpu Nehalem
CLI_TESTS    = test_cli test_cli_predict test_cli_lab test_cli_stop test_cli_files
NOAVX2_TESTS = $(B)/tests/test_kernels $(B)/tests/test_portable $(B)/tests/test_kmeans \
               $(B)/tests/test_kmeans_ab $(CLI_TESTS:%=$(B)/tests/%)
test-noavx2: $(PROGRAM) $(NOAVX2_TESTS)
	@command -v qemu-x86_64 >/dev/null || { echo "test-noavx2 needs qemu-x86_64 (apt-get install qemu-user)"; exit 1; }
	@RUNNER="$(QEMU_NOAVX2)" COLORIZE_BIN="$(QEMU_NOAVX2) ./colorize" CK_TIMEOUT_MULTIPLIER=20 \
	  tests/run_all.sh $(NOAVX2_TESTS) >$(B)/test-noavx2.log 2>&1; status=$$?; cat $(B)/test-noavx2.log; \
	  grep -q 'this CPU has no AVX2' $(B)/test-noavx2.log || { echo "test-noavx2: the emulated CPU still has AVX2"; exit 1; }; \
	  exit $$status

# The aarch64 leg, on an x86-64 machine: the program and the kernel, k-means,
# command-line and photograph tests cross-built (gcc-aarch64-linux-gnu) into
# build-aarch64-linux-gnu/, linked statically so that qemu-aarch64 needs no
# arm64 libraries at run time (Check's, libpng's, libjpeg's and zlib's own
# from Debian's arm64 multiarch packages: check:arm64 libpng-dev:arm64
# libjpeg62-turbo-dev:arm64 zlib1g-dev:arm64), and run under qemu-aarch64
# by a second make with CC set. test_cli also holds the emulated program's palettes against this
# machine's ./colorize on its fixture (COLORIZE_REF_BIN), line for line.
AARCH64_CC   = aarch64-linux-gnu-gcc
CROSS_TESTS  = test_kernels test_portable test_kmeans test_kmeans_ab $(CLI_TESTS) test_photo
test-aarch64: $(PROGRAM)
	@command -v $(AARCH64_CC) >/dev/null && command -v qemu-aarch64 >/dev/null || \
	  { echo "test-aarch64 needs $(AARCH64_CC) and qemu-aarch64" \
	    "(apt-get install gcc-aarch64-linux-gnu qemu-user; check:arm64 libpng-dev:arm64" \
	    "libjpeg62-turbo-dev:arm64 zlib1g-dev:arm64)"; exit 1; }
	@$(MAKE) --no-print-directory CC=$(AARCH64_CC) LDFLAGS=-static \
	  CHECK_LIBS="-lcheck -lsubunit -lm" REF_BIN=./$(PROGRAM) emulated-tests

# Runs CROSS_TESTS built for another machine under qemu for it (test-aarch64
# calls it with CC set); REF_BIN is a native program to compare with.
EMULATOR       = qemu-$(TARGET_CPU)
EMULATED_TESTS = $(CROSS_TESTS:%=$(B)/tests/%)
emulated-tests: $(PROGRAM) $(EMULATED_TESTS)
	@RUNNER="$(EMULATOR)" COLORIZE_BIN="$(EMULATOR) $(PROGRAM)" COLORIZE_REF_BIN="$(REF_BIN)" \
	  CK_TIMEOUT_MULTIPLIER=20 tests/run_all.sh $(EMULATED_TESTS)

# Line coverage of the library (LIB_SRCS and the headers they include, not the
# tests or the front end) over one run of the Check suite, test_cli driving the
# coverage-built binary. One gcov call over every object merges the counts of
# a header that several sources include; its annotated sources go to
# build-cov/coverage.gcov. Counts start from zero each time; the report is
# written even when a check fails, and then the target fails.
coverage: $(BC)/colorize $(TESTS_C)
	@find $(BC) -name '*.gcda' -delete
	@COLORIZE_BIN=$(BC)/colorize CK_TIMEOUT_MULTIPLIER=10 tests/run_all.sh $(TESTS_C); status=$$?; \
	  gcov -t -p -r $(LIB_SRCS:%.c=$(BC)/%.gcno) >$(BC)/coverage.gcov 2>$(BC)/gcov.log || \
	    { cat $(BC)/gcov.log; exit 1; }; \
	  : >$(BC)/uncovered.txt; \
	  awk -v out=$(BC)/uncovered.txt "$$COVERAGE_AWK" $(BC)/coverage.gcov || exit 1; \
	  echo "lines no test reaches: $(BC)/uncovered.txt"; \
	  exit $$status

# Reads gcov's annotated sources, each opened by a "-: 0:Source:FILE" line,
# then count:line:text ('-' not code; '#####' or '=====' never run; a '*'
# after a count, a line partly run). Prints each file's share of lines run and
# writes every line never run to out as FILE:LINE: text.
define COVERAGE_AWK
{
    count = $$0; sub(/:.*/, "", count); gsub(/[ *]/, "", count)
    rest = substr($$0, index($$0, ":") + 1)
    line = rest; sub(/:.*/, "", line); line += 0
    text = substr(rest, index(rest, ":") + 1)
}
line == 0 && text ~ /^Source:/ { name[++nf] = substr(text, 8); next }
count == "-" || line == 0 { next }
{ lines[nf]++ }
count ~ /^[0-9]/ { run[nf]++; next }
{ print name[nf] ":" line ": " text > out }
END {
    for (i = 1; i <= nf; i++) {
        report(name[i], run[i], lines[i])
        all += lines[i]; hit += run[i]
    }
    report("total", hit, all)
}
function report(what, hit, all) {
    printf "%-24s %5d of %5d lines  %5.1f%%\n", what, hit, all, all ? 100 * hit / all : 100
}
endef
export COVERAGE_AWK

bench: $(PROGRAM) $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

# libFuzzer targets (clang), each a tests/fuzz_NAME.c over the whole library
# built with ASan and UBSan in build-fuzz: pickle (the dataset readers), pnm
# (the PGM/PPM reader), model (the model file), png and jpeg (the photograph
# readers, photo_png.c and photo_jpeg.c; libpng and libjpeg themselves are
# the system's, uninstrumented; the PNG reader skips its checksums in this
# build, FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so that mutations get past
# them). `make fuzz` runs FUZZ_TARGET
# (pickle unless given) for FUZZ_SECONDS (600); `make fuzz-pnm` names one.
# Each grows its corpus in build-fuzz/corpus-NAME from tests/fuzz-seeds/NAME,
# on one core; crashes are written to build-fuzz/.
BF = build-fuzz
FUZZ_TARGET ?= pickle
FUZZ_TARGETS = pickle pnm model png jpeg
FUZZFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -I. -I$(GEN) $(PHOTO_CFLAGS) -fopenmp -ffp-contract=off \
            -fsanitize=address,undefined -fno-sanitize-recover=undefined \
            -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
LIB_OBJS_F = $(LIB_SRCS:%.c=$(BF)/%.o)
# Named only by pattern rules, the objects would count as intermediate and be
# deleted after each link (and all rebuilt, slowly, for the next).
.SECONDARY: $(LIB_OBJS_F)
$(BF)/builtin_model.o: $(BUILTIN_INC)
.PHONY: $(FUZZ_TARGETS:%=fuzz-%)

fuzz: fuzz-$(FUZZ_TARGET)

$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: $(BF)/fuzz_%
	@mkdir -p $(BF)/corpus-$*
	OMP_NUM_THREADS=1 $(BF)/fuzz_$* -max_total_time=$${FUZZ_SECONDS:-600} -print_final_stats=1 \
	  -artifact_prefix=$(BF)/$*- $(BF)/corpus-$* tests/fuzz-seeds/$*

$(BF)/%.o: %.c $(wildcard *.h simd/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZFLAGS) -fsanitize=fuzzer-no-link $(if $(findstring _avx2,$<),$(AVX2FLAGS)) -c -o $@ $<

$(BF)/fuzz_%: tests/fuzz_%.c $(LIB_OBJS_F)
	@mkdir -p $(BF)
	clang $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB_OBJS_F) $(PHOTO_LIBS) -lm

# Downloads only when DATA is the default and absent (tools/fetch_cifar.sh):
# the archive's MD5 is checked before it is unpacked, and it is unpacked in a
# temporary folder first, so a broken download leaves nothing half-there.
DEFAULT_DATA = cifar-10-batches-py
DATA ?= $(DEFAULT_DATA)
CIFAR_URL = https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz
CIFAR_MD5 = c58f30108f718f92721af3b95e74349a
FETCH_DATA = if [ ! -d "$(DATA)" ] && [ "$(DATA)" = "$(DEFAULT_DATA)" ]; then \
	  sh tools/fetch_cifar.sh $(CIFAR_URL) $(CIFAR_MD5) $(DEFAULT_DATA) || exit 1; \
	fi
run: $(PROGRAM)
	@$(FETCH_DATA)
	./$(PROGRAM) $(RUNFLAGS) $(DATA)

# The built-in model (README, "The built-in model"): a Lab run on every
# class of DATA, its model.bin kept without the optimiser state
# (tools/model_weights.c), with the decoding temperature chosen on
# photographs. The same bytes as the committed file when DATA is
# ../shared/cifar/cifar-10-batches-py and the kernels are AVX2+FMA (other
# kernel paths round differently), for any thread count.
MODEL_ARCH  = conv5:32 relu@c1 maxpool:2 conv5:32 relu@c2 maxpool:2 conv5:64 relu upsample \
              concat:c2,prev pixel:64 relu upsample concat:input,c1,prev pixel:32 relu pixel:k softmax
MODEL_TEMPERATURE = 0.38
MODEL_FLAGS = --space lab --class all --val 0 -k 16 --epochs 20 --lr 0.003 --seed 1 \
              --arch '$(MODEL_ARCH)'
# (without the built-in model's object, so that it builds where
# models/builtin.bin is missing)
WEIGHTS_OBJS = $(filter-out $(B)/builtin_model.o,$(LIB_OBJS))
$(B)/tools/model_weights: tools/model_weights.c $(WEIGHTS_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(WEIGHTS_OBJS) $(LDLIBS)

model: $(PROGRAM) $(B)/tools/model_weights
	@$(FETCH_DATA)
	rm -rf $(B)/model-run
	./$(PROGRAM) $(MODEL_FLAGS) -o $(B)/model-run $(DATA)
	$(B)/tools/model_weights $(B)/model-run/model.bin models/builtin.bin $(MODEL_TEMPERATURE)
	@ls -l models/builtin.bin

FORMAT_SRCS = $(wildcard *.c *.h simd/*.c simd/*.h tests/*.c tests/*.h tools/*.c)
format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf build build-* colorize
