#!/usr/bin/env bash
# End-to-end load test of the reference server (examples/server.rs) with wrk,
# on 127.0.0.1 only: /health (no auth) and /me (RS256 bearer token from a pool
# of distinct tokens), with and without the verified-token cache.
#
# Usage: scripts/loadtest.sh [OUT.md]   (markdown table on stdout and in OUT.md)
# Each setting runs LOAD_ROUNDS rounds of /health and /me in alternating
# order; the table gives medians (the ratio is the median per-round ratio).
# Knobs: LOAD_DURATION (5s per run), LOAD_ROUNDS (5), LOAD_THREADS (2),
#        LOAD_CONNECTIONS (32), LOAD_TOKENS (1000). Needs wrk (Debian: apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${LOAD_DURATION:-5s}
THREADS=${LOAD_THREADS:-2}
CONNS=${LOAD_CONNECTIONS:-32}
NTOKENS=${LOAD_TOKENS:-1000}
ROUNDS=${LOAD_ROUNDS:-5}
OUT=${1:-}

command -v wrk >/dev/null || { echo "wrk not found (apt-get install -y wrk)" >&2; exit 1; }

echo "building the server and the token issuer (release) ..." >&2
cargo build --quiet --release --all-features --example server
cargo build --quiet --release --manifest-path benches/peers/Cargo.toml --bin token-issuer
SERVER=$ROOT/target/release/examples/server
ISSUER_BIN=$ROOT/benches/peers/target/release/token-issuer

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  exec 3>&- 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The issuer serves its JWKS until its stdin (fd 3 here) closes, at most 15 min.
mkfifo "$WORK/issuer.in"
"$ISSUER_BIN" "$WORK/tokens" "$NTOKENS" 900 <"$WORK/issuer.in" >"$WORK/issuer.out" &
PIDS+=($!)
exec 3>"$WORK/issuer.in"
for _ in $(seq 100); do grep -q '^jwks ' "$WORK/issuer.out" 2>/dev/null && break; sleep 0.1; done
ISS=$(awk '$1=="issuer"{print $2}' "$WORK/issuer.out")
JWKS=$(awk '$1=="jwks"{print $2}' "$WORK/issuer.out")
[ -n "$JWKS" ] || { echo "token-issuer did not start" >&2; exit 1; }
FIRST=$(head -1 "$WORK/tokens")

# wrk's "Requests/sec" and the 99% latency line (--latency), in ms.
rps() { awk '/^Requests\/sec/{printf "%.0f", $2}' "$1"; }
p99() {
  awk '$1=="99%"{v=$2; u=v; sub(/[0-9.]+/,"",u); sub(/[a-z]+$/,"",v);
    if(u=="us")v/=1000; else if(u=="s")v*=1000; printf "%.2f", v}' "$1"
}
non200() { awk '$1=="non200"{print $2}' "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
errs() { awk '/Non-2xx|Socket errors/{$1=$1; printf "%s; ", $0}' "$1"; }

ROWS=()
for CACHE in 0 1; do
  : >"$WORK/server.out"
  BIND=127.0.0.1:0 JWT_ISSUER=$ISS JWT_JWKS_URL=$JWKS JWT_AUDIENCE=api \
    JWT_TOKEN_CACHE=$CACHE "$SERVER" >"$WORK/server.out" 2>"$WORK/server.err" &
  SPID=$!
  PIDS+=($SPID)
  ADDR=""
  for _ in $(seq 100); do
    ADDR=$(awk '/^listening on /{print $3}' "$WORK/server.out")
    [ -n "$ADDR" ] && break
    sleep 0.1
  done
  [ -n "$ADDR" ] || { echo "server did not start:" >&2; cat "$WORK/server.err" >&2; exit 1; }
  case "$ADDR" in 127.0.0.1:*) ;; *) echo "refusing non-loopback $ADDR" >&2; exit 1;; esac
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/me" -H "Authorization: Bearer $FIRST")
  [ "$code" = 200 ] || { echo "/me answered $code with a pool token" >&2; exit 1; }
  echo "cache=$CACHE: server on $ADDR; $ROUNDS rounds of wrk -t$THREADS -c$CONNS -d$DURATION ..." >&2
  HS=(); MS=(); HPS=(); MPS=(); RS=(); BAD=0; NOTE=""
  for R in $(seq "$ROUNDS"); do
    # Alternate the order so that a slow phase of the machine hits both.
    if [ $((R % 2)) = 1 ]; then ORDER="health me"; else ORDER="me health"; fi
    for P in $ORDER; do
      F=$WORK/$P.$CACHE.$R
      if [ "$P" = health ]; then
        # Same script and request shape as /me (the bearer header too, which
        # /health ignores), so that wrk's own cost on the shared cores is alike.
        TOKENS_FILE=$WORK/tokens WRK_PATH=/health wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" \
          --latency -s scripts/rotate.lua "http://$ADDR/health" >"$F" 2>&1
      else
        TOKENS_FILE=$WORK/tokens wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
          -s scripts/rotate.lua "http://$ADDR/me" >"$F" 2>&1
      fi
    done
    H=$(rps "$WORK/health.$CACHE.$R"); M=$(rps "$WORK/me.$CACHE.$R")
    HS+=("$H"); MS+=("$M")
    HPS+=("$(p99 "$WORK/health.$CACHE.$R")"); MPS+=("$(p99 "$WORK/me.$CACHE.$R")")
    RS+=("$(awk -v m="$M" -v h="$H" 'BEGIN{printf "%.3f", m/h}')")
    BAD=$((BAD + $(non200 "$WORK/me.$CACHE.$R")))
    NOTE="$NOTE$(errs "$WORK/health.$CACHE.$R")$(errs "$WORK/me.$CACHE.$R")"
    echo "  round $R: /health $H req/s, /me $M req/s, ratio ${RS[-1]}" >&2
  done
  kill "$SPID"; wait "$SPID" 2>/dev/null || true
  H=$(median "${HS[@]}"); M=$(median "${MS[@]}")
  HP=$(median "${HPS[@]}"); MP=$(median "${MPS[@]}")
  RATIO=$(median "${RS[@]}")
  [ "$CACHE" = 1 ] && LABEL="on (\`JWT_TOKEN_CACHE=1\`)" || LABEL="off"
  ROWS+=("| $LABEL | $H | $HP | $M | $MP | **$RATIO** ($(IFS=' '; echo "${RS[*]}")) | $BAD | ${NOTE:-none} |")
  echo "  median: /health $H req/s (p99 $HP ms), /me $M req/s (p99 $MP ms), ratio $RATIO, non-200 on /me: $BAD" >&2
done

{
  echo "wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), \`-t$THREADS -c$CONNS -d$DURATION --latency\`, $ROUNDS rounds per setting alternating /health and /me (medians; the ratio is the median of per-round ratios, all rounds in brackets), server and wrk on the same 2 cores; both paths go through \`scripts/rotate.lua\` with the same \`Authorization: Bearer\` header, rotating over $NTOKENS distinct RS256 tokens (\`/health\` ignores it, so wrk's own cost is alike), keys from a JWKS on 127.0.0.1 (\`JWT_JWKS_URL\`)."
  echo
  echo "| token cache | /health req/s | /health p99 ms | /me req/s | /me p99 ms | /me ÷ /health (rounds) | /me non-200 | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee ${OUT:+"$OUT"}
