#!/usr/bin/env bash
# bench/servers.sh stops every server it started when the script that sourced it exits, also
# servers started inside $(...) and also when that script fails half-way.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
record="$(mktemp)"
trap 'rm -f "$record"' EXIT
# A stand-in server: says where it listens, then waits; its PID goes to $record.
fake='echo $$ >> "$0"; echo "listening on http://127.0.0.1:4242"; exec sleep 300'
for outcome in success failure; do
  : > "$record"
  set +e
  bash -c '
    set -euo pipefail
    source "$1/bench/servers.sh"
    port=$(start_server one bash -c "$2" "$3")   # in a subshell, as bench/run.sh does
    [ "$port" = 4242 ]
    start_server two bash -c "$2" "$3" > /dev/null
    [ "$4" = success ] || false                  # fails half-way
  ' script "$root" "$fake" "$record" "$outcome"
  rc=$?
  set -e
  started=$(wc -l < "$record")
  if [ "$started" -ne 2 ]; then
    echo "FAILED ($outcome): $started servers started, expected 2" >&2
    exit 1
  fi
  if [ "$outcome" = success ] && [ "$rc" -ne 0 ]; then
    echo "FAILED: the script failed ($rc)" >&2
    exit 1
  fi
  while read -r pid; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "FAILED ($outcome): server $pid still runs after the script exited" >&2
      kill "$pid"
      exit 1
    fi
  done < "$record"
done
echo "bench servers: all stopped after success and after failure"
