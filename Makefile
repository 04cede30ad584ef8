# libdemi: thin wrapper over CMake. Every target installs missing Debian
# packages first (scripts/deps.sh), so a fresh Debian 12 machine needs only
# `make demo` and `make test`.

BUILD       ?= build
ASAN_BUILD  ?= build-asan
PREFIX      ?= /usr/local
JOBS        ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build configure test test-fast test-sanitize demo bench install clean format

all: build

deps:
	@scripts/deps.sh --check || scripts/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -G "Unix Makefiles" $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

# The whole suite: the normal build, then the same suite under ASan+UBSan.
test: build
	tests/run.sh $(BUILD)
	$(MAKE) --no-print-directory test-sanitize

# Only the normal build's suite.
test-fast: build
	tests/run.sh $(BUILD)

test-sanitize: deps
	cmake -S . -B $(ASAN_BUILD) -G "Unix Makefiles" -DDEMI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	DEMI_SANITIZED=1 tests/run.sh $(ASAN_BUILD)

demo: build
	scripts/demo.sh $(BUILD)

bench: build
	bench/run.sh $(BUILD)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
