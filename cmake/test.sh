#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the normal build, then ASan+UBSan, then
# TSan, then the install + find_package consumer check. Exits non-zero on any failure.
# Idempotent; works from any directory; build trees live under build/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source cmake/deps.sh
booking_install_packages "${BOOKING_BUILD_PACKAGES[@]}" "${BOOKING_TEST_PACKAGES[@]}"

jobs="${BOOKING_JOBS:-2}"
started=$SECONDS
last=$SECONDS
# Each stage's header says how long the previous one took and the time so far.
stage() {
  printf '\n==== %s ==== (previous stage %d s, total %d s)\n' "$*" $((SECONDS - last)) \
    $((SECONDS - started))
  last=$SECONDS
}

build_and_test() {  # name, extra cmake args...
  local name="$1"
  shift
  stage "configure + build: $name"
  cmake -S . -B "build/$name" -DBOOKING_BUILD_TESTS=ON -DBOOKING_WERROR=ON "$@" >/dev/null
  cmake --build "build/$name" -j"$jobs"
  stage "test: $name"
  ctest --test-dir "build/$name" --output-on-failure -j"$jobs" --timeout 300
}

# Release here, Debug (ASan) and RelWithDebInfo (TSan) below: each with -Werror.
build_and_test test -DCMAKE_BUILD_TYPE=Release -DBOOKING_BUILD_BENCH=ON \
  -DBOOKING_BUILD_EXAMPLES=ON

if [ "${BOOKING_SKIP_SANITIZERS:-0}" != 1 ]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  build_and_test asan -DCMAKE_BUILD_TYPE=Debug -DBOOKING_SANITIZE=address,undefined \
    -DBOOKING_BUILD_BENCH=OFF -DBOOKING_BUILD_EXAMPLES=OFF
  unset ASAN_OPTIONS UBSAN_OPTIONS
  # halt_on_error: a reported race fails the test instead of scrolling by.
  # tests/tsan.supp lists the only suppression: reads inside uninstrumented libcpp-httplib.so.
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp"
  build_and_test tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBOOKING_SANITIZE=thread \
    -DBOOKING_BUILD_BENCH=OFF -DBOOKING_BUILD_EXAMPLES=OFF
  unset TSAN_OPTIONS
fi

if [ "${BOOKING_SKIP_FUZZ:-0}" != 1 ]; then
  stage "fuzz: libFuzzer targets with ASan+UBSan, ${BOOKING_FUZZ_SECONDS:-25} s each"
  CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBOOKING_BUILD_FUZZ=ON \
    -DBOOKING_SANITIZE=address,undefined,fuzzer-no-link -DBOOKING_BUILD_TESTS=OFF \
    -DBOOKING_BUILD_BENCH=OFF -DBOOKING_BUILD_EXAMPLES=OFF -DBOOKING_BUILD_FRONTENDS=OFF >/dev/null
  cmake --build build/fuzz -j"$jobs"
  for target in json specs; do
    # New inputs go to build/fuzz/corpus; the seeds in tests/fuzz/corpus are only read.
    mkdir -p "build/fuzz/corpus/$target"
    "build/fuzz/tests/fuzz/fuzz_$target" "build/fuzz/corpus/$target" "tests/fuzz/corpus/$target" \
      -max_total_time="${BOOKING_FUZZ_SECONDS:-25}" -max_len=4096 -artifact_prefix=build/fuzz/ \
      -print_final_stats=1 2>&1 | grep -E 'Done|ERROR|SUMMARY|stat::number_of_executed_units'
    test "${PIPESTATUS[0]}" -eq 0
  done
fi

stage "install + find_package consumer, and add_subdirectory consumer"
check="$root/build/install-check"
rm -rf "$check"
cmake --install build/test --prefix "$check/prefix" >/dev/null
cmake -S examples/consumer -B "$check/installed" -DCMAKE_PREFIX_PATH="$check/prefix" >/dev/null
cmake --build "$check/installed" -j"$jobs"
"$check/installed/consumer"
# shellcheck disable=SC2046  # word splitting of pkg-config's flags is intended
g++ -std=c++20 -o "$check/pkgconfig-consumer" examples/consumer/main.cpp \
  $(PKG_CONFIG_PATH="$check/prefix/lib/pkgconfig" pkg-config --cflags --libs --static booking)
"$check/pkgconfig-consumer"
# The plain pkg-config line (without --static) links the default static library too.
# shellcheck disable=SC2046
g++ -std=c++20 -o "$check/pkgconfig-plain" examples/consumer/main.cpp \
  $(PKG_CONFIG_PATH="$check/prefix/lib/pkgconfig" pkg-config --cflags --libs booking)
"$check/pkgconfig-plain"
cmake -S examples/consumer -B "$check/subdirectory" -DBOOKING_SOURCE_DIR="$root" >/dev/null
cmake --build "$check/subdirectory" -j"$jobs" --target consumer
"$check/subdirectory/consumer"
# SQLite only: with PostgreSQL and Redis off, neither libpq nor hiredis is looked for (an empty
# pkg-config path hides them as if they were not installed) nor linked.
mkdir -p "$check/no-pkgconfig"
PKG_CONFIG_LIBDIR="$check/no-pkgconfig" PKG_CONFIG_PATH="" cmake -S examples/consumer \
  -B "$check/sqlite-only" -DBOOKING_SOURCE_DIR="$root" -DBOOKING_WITH_POSTGRES=OFF \
  -DBOOKING_WITH_REDIS=OFF >/dev/null
cmake --build "$check/sqlite-only" -j"$jobs" --target consumer
if grep -qE -- '-lpq|-lhiredis|libpq|libhiredis' "$check/sqlite-only/CMakeFiles/consumer.dir/link.txt"; then
  echo "the SQLite-only consumer links libpq or hiredis" >&2
  exit 1
fi
"$check/sqlite-only/consumer"

stage "all tests passed"
