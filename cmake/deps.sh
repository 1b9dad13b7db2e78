#!/usr/bin/env bash
# The one list of Debian packages libbooking needs, and an idempotent installer for them.
# Sourced or run by cmake/run.sh and cmake/test.sh; installs only what is missing.
set -euo pipefail

# Build and library dependencies (docs/building.md says how CMake finds each).
BOOKING_BUILD_PACKAGES=(
  build-essential cmake pkg-config g++
  libboost1.81-dev libboost-json1.81-dev
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev
  libsqlitecpp-dev libsqlite3-dev
  libcli11-dev
  libhiredis-dev libpq-dev
  libfmt-dev libspdlog-dev libhowardhinnant-date-dev
)
# Test, benchmark and sanitizer tooling.
BOOKING_TEST_PACKAGES=(
  catch2 libbenchmark-dev redis-server postgresql sqlite3 curl clang libclang-rt-14-dev zsh
  nginx openssl
  chromium chromium-driver python3-selenium
)

booking_install_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "deps: installing ${missing[*]}" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be absent on a fresh image; refresh once, then install.
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-all}" in
    build) booking_install_packages "${BOOKING_BUILD_PACKAGES[@]}" ;;
    all) booking_install_packages "${BOOKING_BUILD_PACKAGES[@]}" "${BOOKING_TEST_PACKAGES[@]}" ;;
    list) printf '%s\n' "${BOOKING_BUILD_PACKAGES[@]}" "${BOOKING_TEST_PACKAGES[@]}" ;;
    *) echo "usage: $0 [build|all|list]" >&2; exit 2 ;;
  esac
fi
