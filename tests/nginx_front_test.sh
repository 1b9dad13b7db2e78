#!/usr/bin/env bash
# bookingd behind nginx with docs/nginx/bookingd.conf, as the README shows it: TLS works, each
# client is told apart through X-Forwarded-For (bookingd's per-address hold limit applies to
# the real client, and a client cannot spoof it), and nginx's own limit_req answers 429.
# Usage: nginx_front_test.sh BOOKINGD BOOKING_CLI
set -euo pipefail
bookingd=$1
cli=$2
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; echo "--- bookingd log" >&2; tail -20 "$tmp/bookingd.log" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The README shows this very file.
readme_block=$(awk '/^```nginx$/{f=1; next} /^```$/{f=0} f' "$root/README.md")
file_body=$(sed -n '/^limit_req_zone/,$p' "$root/docs/nginx/bookingd.conf")
[ "$readme_block" = "$file_body" ] || fail "the README's nginx block differs from docs/nginx/bookingd.conf"

bport=$(free_port)
nport=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -keyout "$tmp/privkey.pem" -out "$tmp/fullchain.pem" 2>/dev/null
admin=$("$cli" --db "$tmp/b.db" --json token create ops --role admin |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

"$bookingd" --db "$tmp/b.db" --listen "127.0.0.1:$bport" --trusted-proxy 127.0.0.1 \
  --log-level info >"$tmp/bookingd.out" 2>"$tmp/bookingd.log" &
pids+=($!)
for _ in $(seq 200); do  # bookingd prints its address once it listens (slow under sanitizers)
  grep -q '^listening on' "$tmp/bookingd.out" && break
  sleep 0.05
done
grep -q '^listening on' "$tmp/bookingd.out" || fail "bookingd did not start"

# The documented file, with only the ports and certificate paths replaced.
sed -e "s#listen 443 ssl#listen 127.0.0.1:$nport ssl#" -e "s#127.0.0.1:8080#127.0.0.1:$bport#" \
  -e "s#/etc/ssl/booking/#$tmp/#g" "$root/docs/nginx/bookingd.conf" >"$tmp/bookingd.conf"
mkdir -p "$tmp/logs"
cat >"$tmp/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
events { worker_connections 256; }
http {
    access_log $tmp/logs/access.log;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    include $tmp/bookingd.conf;
}
CONF
nginx -t -q -p "$tmp" -c "$tmp/nginx.conf" || fail "nginx rejects the documented configuration"
nginx -p "$tmp" -c "$tmp/nginx.conf" &
pids+=($!)

base="https://127.0.0.1:$nport"
for _ in $(seq 200); do
  curl -skf -o /dev/null "$base/healthz" && break
  sleep 0.05
done
code() { curl -sk -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$base/healthz")" = 200 ] || fail "healthz through nginx over TLS"

event='{"key":"Ng","name":"Nginx","type":"Concert","date":"2099-01-01T20:00:00Z","eventGroups":[{"key":"gold-Ng","category":"Gold","price":100,"currency":"USD","qty":1000,"startDate":"2020-01-01T00:00:00Z","endDate":"2099-01-01T00:00:00Z"}]}'
hold='{"key":"Ng","groupKeys":[{"key":"gold-Ng","qty":1}]}'
[ "$(code -X POST "$base/v1/api/events" -H 'Content-Type: application/json' -d "$event")" = 401 ] ||
  fail "no open mode behind a proxy"
[ "$(code -X POST "$base/v1/api/events" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $admin" -d "$event")" = 201 ] || fail "admin creates the event"

# One client (127.0.0.2) runs into bookingd's per-address hold limit (10 tickets at once).
held=0
limited=0
for _ in $(seq 12); do
  c=$(code --interface 127.0.0.2 -X POST "$base/v1/api/books" -H 'Content-Type: application/json' -d "$hold")
  [ "$c" = 201 ] && held=$((held + 1))
  [ "$c" = 429 ] && limited=$((limited + 1))
done
[ "$held" = 10 ] && [ "$limited" = 2 ] || fail "127.0.0.2 held $held, limited $limited (want 10, 2)"
# Another client is unaffected, even when it claims to be 127.0.0.2 in X-Forwarded-For.
c=$(code --interface 127.0.0.3 -X POST "$base/v1/api/books" -H 'Content-Type: application/json' \
  -H 'X-Forwarded-For: 127.0.0.2' -d "$hold")
[ "$c" = 201 ] || fail "127.0.0.3 got $c"
grep -q 'POST /v1/api/books 201 .* client=127.0.0.2' "$tmp/bookingd.log" || fail "client 127.0.0.2 not seen"
grep -q 'POST /v1/api/books 201 .* client=127.0.0.3' "$tmp/bookingd.log" || fail "client 127.0.0.3 not seen"
if grep -q 'client=127.0.0.1 ' "$tmp/bookingd.log"; then fail "a request was attributed to the proxy"; fi

# nginx's own limit_req: 80 requests at once from one address exceed rate 20/s + burst 40.
limited=0
for _ in $(seq 80); do
  [ "$(code --interface 127.0.0.4 "$base/healthz")" = 429 ] && limited=$((limited + 1))
done
[ "$limited" -gt 0 ] || fail "nginx limit_req never answered 429"
echo "nginx front: TLS ok, clients told apart, bookingd and nginx limits answer 429 ($limited)"
