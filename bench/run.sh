#!/usr/bin/env bash
# The load benchmark: mcp-v8's plain HTTP API (`POST /api/exec`) under a
# constant arrival rate, stateless and stateful, against the floor (bare
# deno_core) measured in the same run. Writes bench/results/<date>-<topology>.md.
#
#   bench/run.sh [--quick] [--no-build] [--no-state] [--modes "stateless stateful"]
#
# --quick      10 s per rate instead of 30 s (and a shorter state benchmark);
#              the report is written to <date>-<topology>-quick.md
# --no-build   use the binaries already in target/release
# --no-state   skip bench/state.sh (snapshot sizes and times, RSS over 10 000
#              stateful executions); by default its section is included
# --report-only DIR   write the report again from the raw data of an earlier
#              run kept with BENCH_KEEP_WORK=1 (DIR is the path it logged)
#
# Load: examples/loadgen.rs, open loop. Each request is due at start + i/rate
# and its latency counts from that due time, so a server (or generator) that
# falls behind cannot hide queueing (no coordinated omission). Requests rotate
# through eight snippets and every answer is checked. oha (installed with
# `cargo install --locked oha` when missing) cross-checks one step with a
# single snippet and its own coordinated-omission correction.
set -euo pipefail
source "$(dirname "$0")/common.sh"

QUICK=0
REPORT_ONLY=""
BUILD=1
STATE=1
MODES="stateless stateful"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --no-state) STATE=0 ;;
    --report-only) REPORT_ONLY="$2"; shift ;;
    --modes) MODES="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

STEP=30
FLOOR_SECONDS=5
OHA_SECONDS=10
if [ "$QUICK" = 1 ]; then
  STEP=10
  FLOOR_SECONDS=3
  OHA_SECONDS=5
fi
STATELESS_RATES="100 200 500 600 1000 2000"
STATEFUL_RATES="60 100 200 500 1000 2000"
# Pause between steps so one step's backlog does not spill into the next.
PAUSE=3

DATE="$(date +%F)"
TOPOLOGY="$(topology)"
SUFFIX=""
[ "$QUICK" = 1 ] && SUFFIX="-quick"
REPORT="$BENCH_DIR/results/${DATE}-${TOPOLOGY}${SUFFIX}.md"

# run_floor OUT ARGS... — one floor measurement. A floor whose threads got
# less than ~90 % of their wall time as CPU shared the machine with something
# else: measured again, up to three times in all.
run_floor() {
  local out="$1" attempt
  shift
  for attempt in 1 2 3; do
    wait_quiet
    "$EXAMPLES/floor" "$@" --seconds "$FLOOR_SECONDS" --json >"$out"
    if jq -e '.cpu_us_per_execution >= 0.9 * .wall_us_per_execution' "$out" >/dev/null; then
      return 0
    fi
    log "floor $*: contended (CPU well below wall time), attempt $attempt: $(cat "$out")"
  done
}

if [ -n "$REPORT_ONLY" ]; then
  WORK="$REPORT_ONLY"
else
  prepare_run mcp-v8-bench
  (cd "$ROOT" && echo "\`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (with uncommitted changes in src/)')") >"$WORK/commit.txt"
  date -u '+%Y-%m-%d %H:%M UTC' >"$WORK/started.txt"
  if ! command -v oha >/dev/null && [ ! -x "$HOME/.cargo/bin/oha" ]; then
    # Without --locked, one of oha's dependencies wants a newer rustc.
    log "installing oha (cargo install --locked oha)"
    cargo install --locked --quiet oha
  fi
  OHA="$(command -v oha || echo "$HOME/.cargo/bin/oha")"

  # CPU seconds (user + system) a process has used.
  cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' /proc/"$1"/stat 2>/dev/null || echo 0
  }
  workers_cpu_seconds() {
    local total=0 pid
    for pid in $(worker_pids "$1"); do
      total="$(awk -v a="$total" -v b="$(cpu_seconds "$pid")" 'BEGIN {printf "%.3f", a + b}')"
    done
    echo "$total"
  }

  wait_quiet
  log "floor: bare deno_core, 2 threads, ${FLOOR_SECONDS} s"
  run_floor "$WORK/floor.json" bare --threads 2
  log "floor: $(cat "$WORK/floor.json")"
  # One isolate at a time, as in a worker; then with one idle "keeper" isolate
  # alive beside it (V8 then keeps the read-only heap shared between isolates
  # instead of rebuilding it for each one).
  wait_quiet
  run_floor "$WORK/floor-1.json" bare --threads 1
  log "floor, 1 thread: $(cat "$WORK/floor-1.json")"
  wait_quiet
  run_floor "$WORK/floor-1-keeper.json" bare --threads 1 --keeper
  log "floor, 1 thread, keeper: $(cat "$WORK/floor-1-keeper.json")"
  wait_quiet
  log "stateful floor: bare deno_core snapshot cycle, 2 processes, ${FLOOR_SECONDS} s"
  run_floor "$WORK/floor-stateful.json" bare-stateful --threads 2
  log "stateful floor: $(cat "$WORK/floor-stateful.json")"
  wait_quiet
  log "stateful floor with the engine's process settings (a reference), 2 processes, ${FLOOR_SECONDS} s"
  run_floor "$WORK/floor-stateful-tuned.json" bare-stateful --threads 2 --tuned
  log "stateful floor, tuned: $(cat "$WORK/floor-stateful-tuned.json")"
  wait_quiet
  log "floor: mcp-v8's engine in process, 2 processes, ${FLOOR_SECONDS} s"
  run_floor "$WORK/engine.json" engine --threads 2
  log "engine: $(cat "$WORK/engine.json")"
  wait_quiet
  log "floor: mcp-v8's engine in process, stateful, 2 processes, ${FLOOR_SECONDS} s"
  run_floor "$WORK/engine-stateful.json" engine-stateful --threads 2
  log "engine-stateful: $(cat "$WORK/engine-stateful.json")"

  : >"$WORK/load.jsonl"
  for mode in $MODES; do
    case "$mode" in
      stateless)
        rates="$STATELESS_RATES"
        args=(--stateless --state-dir "$WORK/$mode-state")
        ;;
      stateful)
        rates="$STATEFUL_RATES"
        args=(--state-dir "$WORK/$mode-state" --directory-path "$WORK/$mode-heaps")
        ;;
      *) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
    esac
    log "$mode: starting mcp-v8 ${args[*]}"
    start_server "$WORK/$mode.log" "${args[@]}"
    log "$mode: serving at $SERVER_URL (workers: $(worker_pids "$SERVER_PID" | wc -l))"
    for rate in $rates; do
      sleep "$PAUSE"
      wait_quiet
      server_cpu0="$(cpu_seconds "$SERVER_PID")"
      workers_cpu0="$(workers_cpu_seconds "$SERVER_PID")"
      busy0="$(machine_busy_ticks)"
      started="$(date +%s.%N)"
      out="$("$EXAMPLES/loadgen" --url "$SERVER_URL/api/exec" --rate "$rate" --duration "$STEP" --label "$mode")"
      wall="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')"
      busy="$(awk -v a="$busy0" -v b="$(machine_busy_ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f", (b - a) / hz}')"
      server_cpu="$(awk -v a="$server_cpu0" -v b="$(cpu_seconds "$SERVER_PID")" 'BEGIN {printf "%.3f", b - a}')"
      workers_cpu="$(awk -v a="$workers_cpu0" -v b="$(workers_cpu_seconds "$SERVER_PID")" 'BEGIN {printf "%.3f", b - a}')"
      # CPU used by anything but the server, its workers and the load generator,
      # as a share of the machine during the step.
      jq -c --argjson s "$server_cpu" --argjson w "$workers_cpu" --argjson busy "$busy" \
        --argjson wall "$wall" --argjson cores "$(nproc)" \
        '. + {server_cpu_s: $s, workers_cpu_s: $w, machine_busy_s: $busy, step_wall_s: $wall,
              foreign_cpu_pct: ([0, ($busy - $s - $w - .loadgen_cpu_s) * 100 / ($wall * $cores)] | max | round)}' \
        <<<"$out" >>"$WORK/load.jsonl"
      log "$mode $rate/s: $(tail -n1 "$WORK/load.jsonl" | jq -r '"achieved \(.achieved_per_s)/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, success \(.success_pct) %, 429 \(.rejected_429), other errors \(.http_errors + .timeouts + .transport_errors + .wrong_answers), CPU s: server \(.server_cpu_s) workers \(.workers_cpu_s) loadgen \(.loadgen_cpu_s), foreign CPU \(.foreign_cpu_pct) %" + (if .first_error then ", first error: \(.first_error)" else "" end)')"
    done
    if [ "$mode" = stateless ]; then
      sleep "$PAUSE"
      wait_quiet
      log "$mode: oha cross-check, 600/s for ${OHA_SECONDS} s, '1 + 1' only"
      "$OHA" --no-tui --output-format json -z "${OHA_SECONDS}s" -q 600 --latency-correction -c 200 \
        -m POST -T application/json -d '{"code":"1 + 1"}' "$SERVER_URL/api/exec" >"$WORK/oha.json" 2>"$WORK/oha.err" ||
        log "oha failed: $(cat "$WORK/oha.err")"
    fi
    stop_server
  done

  if [ "$STATE" = 1 ]; then
    state_args=(--no-build --out-dir "$WORK/state")
    [ "$QUICK" = 1 ] && state_args+=(--quick)
    "$BENCH_DIR/state.sh" "${state_args[@]}" || log "state.sh failed; the report has no state section"
  fi

  # The floor again: on a shared or virtual machine it drifts; the report shows both.
  wait_quiet
  run_floor "$WORK/floor-after.json" bare --threads 2
  log "floor after: $(cat "$WORK/floor-after.json")"
  wait_quiet
  run_floor "$WORK/floor-stateful-after.json" bare-stateful --threads 2
  log "stateful floor after: $(cat "$WORK/floor-stateful-after.json")"
fi

# ---------------------------------------------------------------------------
# The report.
# The floor: the better of the two measurements (noise only ever slows it).
# Stateless load is compared with the bare floor, stateful load with the
# stateful one (a snapshot per execution).
best_floor() { jq -s "max_by(.per_second) | .$1" "${@:2}"; }
floor_rate="$(best_floor per_second "$WORK/floor.json" "$WORK/floor-after.json")"
floor_cpu_us="$(best_floor cpu_us_per_execution "$WORK/floor.json" "$WORK/floor-after.json")"
stateful_floor_rate="$(best_floor per_second "$WORK/floor-stateful.json" "$WORK/floor-stateful-after.json")"
stateful_floor_cpu_us="$(best_floor cpu_us_per_execution "$WORK/floor-stateful.json" "$WORK/floor-stateful-after.json")"
mode_floor_rate() { if [ "$1" = stateful ]; then echo "$stateful_floor_rate"; else echo "$floor_rate"; fi; }
mode_floor_cpu_us() { if [ "$1" = stateful ]; then echo "$stateful_floor_cpu_us"; else echo "$floor_cpu_us"; fi; }

# "RATE | CPU" of a floor measurement, flagged when it shared the machine.
floor_cells() {
  jq -r '"\(.per_second)\(if .cpu_us_per_execution < 0.9 * .wall_us_per_execution then " (contended: CPU < 90 % of wall time)" else "" end) | \(.cpu_us_per_execution)"' "$1"
}

rows() {
  jq -r --arg mode "$1" --argjson floor_cpu_us "$(mode_floor_cpu_us "$1")" '
    select(.label == $mode) |
    ((.server_cpu_s + .workers_cpu_s) / ([.successes, 1] | max) * 1000) as $cpu_ms |
    "| \(.offered_per_s) | \(.achieved_per_s) | \(.latency_ms.avg) | \(.latency_ms.p50) | \(.latency_ms.p95) | \(.latency_ms.p99) | \(.success_pct) | \(.dropped) | \(.rejected_429) / \(.http_errors + .timeouts + .transport_errors + .wrong_answers) | \(.server_duration_ms_avg) | \($cpu_ms * 100 | round / 100) (\($cpu_ms * 1000 / $floor_cpu_us * 10 | round / 10)×) | \(.foreign_cpu_pct) |"
  ' "$WORK/load.jsonl"
}
peak() { jq -s --arg mode "$1" '[.[] | select(.label == $mode) | .achieved_per_s] | max // 0' "$WORK/load.jsonl"; }
at_rate() { jq -s --arg mode "$1" --argjson rate "$2" -r "[.[] | select(.label == \$mode and .offered_per_s == \$rate)][0] | $3 // \"n/a\"" "$WORK/load.jsonl"; }
# The highest offered rate served with >= 99 % success.
served() { jq -s --arg mode "$1" '[.[] | select(.label == $mode and .success_pct >= 99) | .offered_per_s] | max // 0' "$WORK/load.jsonl"; }
yes_no() { if awk "BEGIN {exit !($1)}"; then echo "**met**"; else echo "**missed**"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.0f %%", 100 * a / b; else print "n/a"}'; }

{
  echo "# mcp-v8 load benchmark — ${DATE}, ${TOPOLOGY}${SUFFIX:+ (quick run: ${STEP} s per rate)}"
  echo
  echo "**Machine:** $(machine_description)"
  echo "Commit: $(cat "$WORK/commit.txt" 2>/dev/null || echo unknown). Produced by \`bench/run.sh$([ "$QUICK" = 1 ] && echo ' --quick' || true)\`; measured $(cat "$WORK/started.txt" 2>/dev/null || echo '(time unknown)')."
  echo
  echo "## Floor"
  echo
  echo "| what | executions/s | CPU µs per execution |"
  echo "|---|---|---|"
  echo "| bare deno_core: \`JsRuntime\` from a startup snapshot, \`1 + 1\`, drop, 2 threads (\`bench/floor\`), before the load runs | $(floor_cells "$WORK/floor.json") |"
  echo "| the same, after the load runs | $(floor_cells "$WORK/floor-after.json") |"
  echo "| bare, 1 thread: one isolate alive at a time, as in a worker process (\`bench/floor --threads 1\`) | $(floor_cells "$WORK/floor-1.json") |"
  echo "| bare, 1 thread, plus one idle isolate kept alive (\`bench/floor --threads 1 --keeper\`) | $(floor_cells "$WORK/floor-1-keeper.json") |"
  echo "| **stateful floor**: bare deno_core, \`JsRuntimeForSnapshot\` from the same snapshot, \`1 + 1\`, \`snapshot()\`, one process per core (\`bench/floor bare-stateful\`), before the load runs | $(floor_cells "$WORK/floor-stateful.json") |"
  echo "| the same, after the load runs | $(floor_cells "$WORK/floor-stateful-after.json") |"
  echo "| for reference, not a floor: the same with a stateful engine's V8 flags and process settings (one-thread GC, sealed read-only space, glibc keeps freed memory; \`engine::tune_for_snapshots\`, \`bench/floor bare-stateful --tuned\`) | $(floor_cells "$WORK/floor-stateful-tuned.json") |"
  echo "| mcp-v8's engine without the server: \`Engine::boot\` (stateless mode, with its idle isolate) + \`Engine::run\` of stateless \`1 + 1\` jobs, one process per core like the workers, on the system allocator (the \`mcp-v8\` binary links mimalloc) (\`bench/floor engine\`) | $(floor_cells "$WORK/engine.json") |"
  echo "| the same with stateful jobs (a snapshot-creating isolate; heap snapshotted and compressed after each run; no store) (\`bench/floor engine-stateful\`) | $(floor_cells "$WORK/engine-stateful.json") |"
  echo
  echo "The **floor** is the better of the first two rows ($floor_rate/s, $floor_cpu_us µs CPU per execution), the **stateful floor** the better of the two stateful rows ($stateful_floor_rate/s, $stateful_floor_cpu_us µs). The **floor ratio** below divides the server's CPU per execution (server process plus workers, from /proc) by the floor's (stateless load) or the stateful floor's (stateful load)."
  echo
  echo "## Load: \`POST /api/exec\`, constant arrival rate"
  echo
  echo "Open loop, ${STEP} s per rate, the eight snippets of the issue in rotation (JSON body \`{code}\`), every answer checked"
  echo "(success = HTTP 200, \`status: completed\`, expected result). Latency is from each request's *scheduled* send time"
  echo "(no coordinated omission), over successful requests; \`achieved\` = successes per second until the last success."
  echo "Errors: HTTP 429 (queue full, \`max_queued_executions\` = 1000) / anything else (other HTTP errors, timeouts at 30 s, transport errors, wrong answers)."
  echo "\`server ms\` is the server's own \`duration_ms\` (acceptance to final status, so it includes queueing)."
  echo "Workers: one per core (default \`max_concurrent_executions\`). \`CPU ms per execution\` = CPU of the server process and its workers"
  echo "during the step (from /proc) / successes; the floor ratio divides it by the (stateful) floor's CPU per execution. \`foreign CPU %\` = share of the"
  echo "machine used by anything else (other than the server, its workers and the load generator) during the step; each step waits for a quiet machine first."
  for mode in $MODES; do
    echo
    case "$mode" in
      stateless) echo "### Stateless (\`--stateless\`)" ;;
      stateful) echo "### Stateful (directory store in a temp dir; no \`heap\` in requests, so every execution starts fresh and is snapshotted, compressed and stored)" ;;
    esac
    echo
    echo "| offered/s | achieved/s | avg ms | p50 ms | p95 ms | p99 ms | success % | dropped | errors 429 / other | server ms (avg) | CPU ms per execution (floor ratio) | foreign CPU % |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    rows "$mode"
    echo
    echo "Peak achieved: **$(peak "$mode")/s** ($(ratio "$(peak "$mode")" "$(mode_floor_rate "$mode")") of the $([ "$mode" = stateful ] && echo "stateful floor" || echo floor)'s $(mode_floor_rate "$mode")/s); highest offered rate served with ≥ 99 % success: $(served "$mode")/s."
  done
  if [ -s "$WORK/oha.json" ]; then
    echo
    echo "**Cross-check with oha** (stateless, \`1 + 1\` only, 600/s for ${OHA_SECONDS} s, \`--latency-correction\`):"
    jq -r '"requests/s \(.summary.requestsPerSec * 10 | round / 10), success rate \(.summary.successRate * 100) %, p50 \(.latencyPercentiles.p50 * 1000 * 100 | round / 100) ms, p95 \(.latencyPercentiles.p95 * 1000 * 100 | round / 100) ms, p99 \(.latencyPercentiles.p99 * 1000 * 100 | round / 100) ms, status codes \(.statusCodeDistribution | tostring)."' "$WORK/oha.json" 2>/dev/null ||
      echo "(oha's output could not be read)"
  fi
  if [ "$STATE" = 1 ] && [ -s "$WORK/state/state.md" ]; then
    echo
    cat "$WORK/state/state.md"
  fi
  echo
  echo "## Targets"
  echo
  echo "| target | measured | |"
  echo "|---|---|---|"
  if [[ " $MODES " == *" stateless "* ]]; then
    p="$(peak stateless)"
    echo "| stateless sustains ≥ 800 executions/s | peak achieved $p/s | $(yes_no "$p >= 800") |"
    echo "| stateless sustains ≥ 85 % of the floor | $(ratio "$p" "$floor_rate") of $floor_rate/s | $(yes_no "$p >= 0.85 * $floor_rate") |"
    p99="$(at_rate stateless 600 .latency_ms.p99)"
    s="$(at_rate stateless 600 .success_pct)"
    echo "| stateless p99 ≤ 15 ms at 600/s offered | p99 $p99 ms (success $s %) | $(yes_no "\"$p99\" != \"n/a\" && $p99 <= 15 && $s >= 99") |"
  fi
  if [[ " $MODES " == *" stateful "* ]]; then
    p="$(peak stateful)"
    echo "| stateful sustains ≥ 80 executions/s | peak achieved $p/s | $(yes_no "$p >= 80") |"
    echo "| stateful sustains ≥ 90 % of the stateful floor | $(ratio "$p" "$stateful_floor_rate") of $stateful_floor_rate/s | $(yes_no "$p >= 0.9 * $stateful_floor_rate") |"
    p95="$(at_rate stateful 60 .latency_ms.p95)"
    s="$(at_rate stateful 60 .success_pct)"
    echo "| stateful p95 ≤ 60 ms at 60/s offered | p95 $p95 ms (success $s %) | $(yes_no "\"$p95\" != \"n/a\" && $p95 <= 60 && $s >= 99") |"
  fi
  if [ "$STATE" = 1 ] && [ -s "$WORK/state/summary.json" ]; then
    kb="$(jq .trivial_compressed_kb "$WORK/state/summary.json")"
    echo "| compressed trivial snapshot ≤ 250 KB | $kb KB | $(yes_no "$kb <= 250") |"
    drift="$(jq .rss_drift_pct "$WORK/state/summary.json")"
    n="$(jq .rss_executions "$WORK/state/summary.json")"
    echo "| worker RSS flat (±10 %) over 10 000 stateful executions | $drift % over $n executions | $(yes_no "$drift <= 10 && $drift >= -10 && $n >= 10000") |"
  fi
  echo
  echo "## Against the seeds' table"
  echo
  echo "| system | stateless saturation | stateful saturation |"
  echo "|---|---|---|"
  echo "| upstream (seeds' table) | ~139/s | ~50/s |"
  echo "| seeds' single node | ~977/s | — |"
  echo "| mcp-v8, this run (${TOPOLOGY}) | $([[ " $MODES " == *" stateless "* ]] && echo "$(peak stateless)/s" || echo "—") | $([[ " $MODES " == *" stateful "* ]] && echo "$(peak stateful)/s" || echo "—") |"
} >"$REPORT"

log "report: $REPORT"
cat "$REPORT"
