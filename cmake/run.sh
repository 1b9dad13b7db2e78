#!/usr/bin/env bash
# Installs what is missing, builds in Release and starts bookingd with the demo event on an
# SQLite file at 127.0.0.1:8080 (override with BOOKING_LISTEN / BOOKING_DB). Idempotent; works
# from any directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source cmake/deps.sh
booking_install_packages "${BOOKING_BUILD_PACKAGES[@]}"

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DBOOKING_BUILD_TESTS=OFF \
  -DBOOKING_BUILD_BENCH=OFF -DBOOKING_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/release -j"${BOOKING_JOBS:-2}" --target bookingd booking

listen="${BOOKING_LISTEN:-127.0.0.1:8080}"
db="${BOOKING_DB:-$root/build/run/booking.db}"
mkdir -p "$(dirname "$db")"
cat <<MSG

bookingd is starting on http://$listen with the demo event (database: $db)
Open the storefront at http://$listen/ and the operator's page at http://$listen/admin
Or try, from another shell:
  curl -s 'http://$listen/v1/api/events?name=blink'
  curl -s -X POST http://$listen/v1/api/books -H 'Content-Type: application/json' \\
       -d '{"key":"Con10124","groupKeys":[{"key":"gold-Con10124","qty":2}],"userId":"u1"}'
Stop it with Ctrl-C.

MSG
exec build/release/httpd/bookingd --demo --db "$db" --listen "$listen" "$@"
