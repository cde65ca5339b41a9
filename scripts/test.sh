#!/usr/bin/env bash
# Builds and runs the whole test suite: a plain build, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the suites that run code on several
# threads (CTest label "threads": the threadpool, cross-thread greenlets, thread exit) under
# ThreadSanitizer. Installs missing Debian packages (as root). Fails on any test failure or
# sanitizer report.
set -euo pipefail
source "$(dirname "$0")/common.sh"

# The plain build includes bench/, which needs the benchmarks' peers.
green_install "${GREEN_PACKAGES[@]}" "${GREEN_BENCH_PACKAGES[@]}"

echo "== plain build (RelWithDebInfo)"
# Every part on, explicitly: demo.sh shares this build tree and turns tests and benchmarks off.
green_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREEN_TESTS=ON -DGREEN_DEMOS=ON -DGREEN_BENCH=ON
ctest --test-dir "$GREEN_ROOT/build" --output-on-failure --no-tests=error -j "$(nproc)"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
green_build build-asan -DCMAKE_BUILD_TYPE=Debug -DGREEN_SANITIZE=address,undefined -DGREEN_DEMOS=OFF -DGREEN_BENCH=OFF
ASAN_OPTIONS=detect_stack_use_after_return=1:detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$GREEN_ROOT/build-asan" --output-on-failure --no-tests=error -j "$(nproc)"

echo "== ThreadSanitizer build (suites labelled \"threads\")"
# Greenlet switches are annotated as TSan fibers (lib/context.hpp), so the switch-heavy suites
# run here too without false reports. halt_on_error: the first report fails the test.
green_build build-tsan -DCMAKE_BUILD_TYPE=Debug -DGREEN_SANITIZE=thread -DGREEN_DEMOS=OFF -DGREEN_BENCH=OFF
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir "$GREEN_ROOT/build-tsan" --output-on-failure -j "$(nproc)" -L threads

echo "== all tests passed"
