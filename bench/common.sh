# Shared by bench/run.sh, bench/state.sh and bench/floor (sourced, not run).
# Builds, starts servers on ephemeral ports, reads /proc; no policy of its own.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BIN="$ROOT/target/release/mcp-v8"
EXAMPLES="$ROOT/target/release/examples"

# V8's prebuilt library: as ./dev does, use ../shared/v8 when nothing is set.
if [ -z "${RUSTY_V8_ARCHIVE:-}" ]; then
  for archive in "$ROOT"/../shared/v8/librusty_v8_simdutf_release_x86_64-unknown-linux-gnu.a.gz; do
    if [ -f "$archive" ]; then
      RUSTY_V8_ARCHIVE="$(realpath "$archive")"
      export RUSTY_V8_ARCHIVE
    fi
  done
fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The server binary and the benchmark's example binaries, release mode.
build_all() {
  log "building (release)"
  (cd "$ROOT" && cargo build --release --locked --quiet --bin mcp-v8 --example floor --example loadgen --example state)
}

# start_server LOGFILE ARGS... — starts mcp-v8 on an ephemeral port and sets
# SERVER_PID and SERVER_URL (http://ADDR) from its "listening on" line.
start_server() {
  local logfile="$1"
  shift
  "$BIN" --http-port 0 --log-level warn "$@" 2>"$logfile" &
  SERVER_PID=$!
  local line=""
  for _ in $(seq 1 300); do
    line="$(grep -m1 -o 'mcp-v8 listening on http://[^ ]*' "$logfile" || true)"
    [ -n "$line" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "mcp-v8 exited before listening:"
      cat "$logfile" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$line" ]; then
    log "mcp-v8 did not print its listening line within 30 s"
    kill "$SERVER_PID" 2>/dev/null || true
    return 1
  fi
  SERVER_URL="${line#mcp-v8 listening on }"
  SERVER_URL="${SERVER_URL%/}"
  # Workers boot in the background: wait until one execution succeeds.
  for _ in $(seq 1 100); do
    if curl -fsS -m 10 -H 'content-type: text/plain' --data-binary '1 + 1' \
      "$SERVER_URL/api/exec" 2>/dev/null | grep -q '"completed"'; then
      return 0
    fi
    sleep 0.2
  done
  log "mcp-v8 at $SERVER_URL never completed an execution"
  return 1
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

# PIDs of the server's `mcp-v8 worker` children.
worker_pids() {
  local pid
  for pid in $(pgrep -P "$1"); do
    if tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | grep -q ' worker'; then
      echo "$pid"
    fi
  done
}

# RSS of a process in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0; }

# Sum of the RSS of the server's workers, in KiB.
workers_rss_kib() {
  local total=0 pid
  for pid in $(worker_pids "$1"); do
    total=$((total + $(rss_kib "$pid")))
  done
  echo "$total"
}

# The machine, as one markdown paragraph.
machine_description() {
  local cores model mem kernel
  cores="$(nproc)"
  model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  mem="$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  kernel="$(uname -r)"
  echo "${cores} cores (${model:-unknown CPU}), ${mem} RAM, Linux ${kernel}; load generator on the same machine."
}

# The topology name used in result file names.
topology() { echo "single-node-$(nproc)core"; }

# Busy CPU ticks of the whole machine (all cores), from /proc/stat.
machine_busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# Percent of the machine's CPU busy over the next second.
machine_busy_pct() {
  local before after
  before="$(machine_busy_ticks)"
  sleep 1
  after="$(machine_busy_ticks)"
  awk -v d="$((after - before))" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" 'BEGIN {printf "%.0f", 100 * d / hz / n}'
}

# Other users' builds share this machine: wait (up to BENCH_QUIET_WAIT
# seconds, default 900) until it is quiet (< 15 % busy for three seconds in a
# row) so that a benchmark does not measure someone else's compiler.
wait_quiet() {
  local limit="${BENCH_QUIET_WAIT:-900}" waited=0 calm=0 busy
  while [ "$calm" -lt 3 ]; do
    busy="$(machine_busy_pct)"
    if [ "$busy" -lt 15 ]; then calm=$((calm + 1)); else calm=0; fi
    waited=$((waited + 1))
    if [ "$calm" -eq 0 ] && [ $((waited % 30)) -eq 0 ]; then
      log "machine busy ($busy % CPU by other processes); waiting for quiet ($waited s)"
    fi
    if [ "$waited" -ge "$limit" ]; then
      log "machine still busy after $limit s; measuring anyway (see the foreign CPU column)"
      return 0
    fi
  done
}

# Shared set-up of run.sh and state.sh: a scratch directory (removed on exit
# unless BENCH_KEEP_WORK is set), the server stopped on exit, enough file
# descriptors for open-loop load, jq, and the release build unless --no-build.
# Sets WORK to the scratch directory. $1: its name prefix.
prepare_run() {
  WORK="$(mktemp -d "/tmp/$1.XXXXXX")"
  trap bench_cleanup EXIT
  # Open-loop load at 2000/s can hold a thousand connections open at once.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  command -v jq >/dev/null || { log "installing jq"; apt-get install -y -qq jq >/dev/null; }
  if [ "$BUILD" = 1 ]; then
    build_all
  fi
}

bench_cleanup() {
  stop_server
  if [ -n "${BENCH_KEEP_WORK:-}" ]; then log "raw data kept in $WORK"; else rm -rf "$WORK"; fi
}
