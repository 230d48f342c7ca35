#!/usr/bin/env bash
# Two `calm serve` replicas behind nginx on loopback, and traffic through it: the setup Docs/Serving.md
# describes, run end to end. Installs nginx from Debian's package when it is missing (needs root, or
# install it first), builds `calm` in release when .build/release/calm is missing, starts the
# replicas and nginx (each in the background, stopped on exit), checks a streamed completion with
# curl, runs `calm bench-serve --http` through nginx, and prints how nginx spread the requests
# (each replica's /metrics).
#
#   Scripts/nginx-replicas.sh [--model DIR] [--requests R] [--concurrency C] [--max-tokens N] [--kv-mib M]
#
# Defaults: the built-in model, 64 requests, 16 in flight, 32 tokens each, 256 MiB of KV cache per
# replica. Ports: 18081 and 18082 for the replicas, 18080 for nginx ($CALM_NGINX_PORT_BASE moves
# all three). Everything it writes goes to a temporary directory, printed at the start.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODEL=$ROOT/Sources/CALMDefaultModel/DefaultModel
REQUESTS=64
CONCURRENCY=16
MAX_TOKENS=32
KV_MIB=256
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --max-tokens) MAX_TOKENS=$2; shift 2 ;;
    --kv-mib) KV_MIB=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
BASE=${CALM_NGINX_PORT_BASE:-18080}
NGINX_PORT=$BASE
REPLICA_PORTS=($((BASE + 1)) $((BASE + 2)))

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH=/opt/swift/usr/bin:$PATH; fi
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
  echo "installing nginx (Debian package)..." >&2
  [ "$(id -u)" -eq 0 ] || { echo "nginx is missing and this is not root: apt-get install nginx first" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
CALM=$ROOT/.build/release/calm
if [ ! -x "$CALM" ]; then
  echo "building calm (release)..." >&2
  swift build -c release --product calm >/dev/null
fi

WORK=$(mktemp -d /tmp/calm-nginx.XXXXXX)
echo "work directory: $WORK" >&2
PIDS=()
cleanup() {
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # still stops the replicas and nginx (through the EXIT trap)

for i in 0 1; do
  "$CALM" serve --model "$MODEL" --port "${REPLICA_PORTS[$i]}" --kv-mib "$KV_MIB" >"$WORK/replica$i.log" 2>&1 &
  PIDS+=($!)
done
for port in "${REPLICA_PORTS[@]}"; do
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { echo "replica on port $port did not start:" >&2; cat "$WORK"/replica*.log >&2; exit 1; }
done

mkdir -p "$WORK/nginx/logs"
# SSE needs nginx to pass each event on at once (proxy_buffering off) and HTTP/1.1 keep-alive to
# the replicas (proxy_http_version 1.1, an empty Connection header); least_conn sends a new request
# to the replica with fewer in flight, which evens out long and short completions.
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream calm {
    least_conn;
    server 127.0.0.1:${REPLICA_PORTS[0]};
    server 127.0.0.1:${REPLICA_PORTS[1]};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://calm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 600s;
      client_max_body_size 1m;
    }
  }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log"
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$NGINX_PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== a streamed completion through nginx (curl)"
curl -fsS -N "http://127.0.0.1:$NGINX_PORT/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt": "Once upon a time", "max_tokens": 12, "seed": 1, "temperature": 0.5, "stream": true}' >"$WORK/curl.txt"
head -c 400 "$WORK/curl.txt"; echo " …"
grep -q '^data: \[DONE\]' "$WORK/curl.txt" || { echo "the stream through nginx did not end with [DONE]" >&2; exit 1; }
echo "== calm bench-serve --http through nginx: $REQUESTS requests, $CONCURRENCY in flight, $MAX_TOKENS tokens each"
"$CALM" bench-serve --model "$MODEL" --http "http://127.0.0.1:$NGINX_PORT" --requests "$REQUESTS" --concurrency "$CONCURRENCY" \
  --max-tokens "$MAX_TOKENS" --json | tee "$WORK/bench.json"
echo "== requests each replica served (its /metrics)"
for port in "${REPLICA_PORTS[@]}"; do
  echo "replica :$port  $(curl -fsS "http://127.0.0.1:$port/metrics" | grep '^calm_requests_total' | tr '\n' ' ')"
done
FAILED=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' "$WORK/bench.json")
[ "${FAILED:-1}" = 0 ] || { echo "some requests failed through nginx" >&2; exit 1; }
echo "ok: every request completed through nginx"
