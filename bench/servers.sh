# Sourced by bench/run.sh: a work directory, start_server, and a cleanup on exit that stops
# every server started, also those started inside a command substitution (a subshell, whose
# variables never reach the script: their PIDs go to a file) and also when the script fails
# half-way. tests/bench_servers_test.sh checks exactly that.
work="$(mktemp -d /tmp/booking-bench.XXXXXX)"
touch "$work/pids"
track() { echo "$1" >> "$work/pids"; }
cleanup() {
  local p
  while read -r p; do kill "$p" 2>/dev/null || true; done < "$work/pids"
  for _ in $(seq 1 100); do  # up to 5 s for them to exit, then SIGKILL
    local alive=0
    while read -r p; do kill -0 "$p" 2>/dev/null && alive=1; done < "$work/pids"
    [ "$alive" = 0 ] && break
    sleep 0.05
  done
  while read -r p; do kill -9 "$p" 2>/dev/null || true; done < "$work/pids"
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_server() {  # name, command...: starts it, waits for "listening on ...:PORT", echoes PORT
  local name="$1"; shift
  "$@" > "$work/$name.out" 2> "$work/$name.err" &
  track $!
  for _ in $(seq 1 500); do
    if grep -q 'listening on' "$work/$name.out" 2>/dev/null; then
      sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/$name.out" | head -1
      return
    fi
    sleep 0.01
  done
  echo "$name did not start: $(cat "$work/$name.err")" >&2
  exit 1
}
