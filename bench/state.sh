#!/usr/bin/env bash
# The stateful micro-benchmark: heap snapshot create time, compressed size,
# store write and restore times (trivial heap and ~10 MB of JS objects),
# stateful executions/s with 1 and 2 workers, and the workers' RSS before and
# after 10 000 stateful executions. Writes bench/results/<date>-<topology>-state.md
# (or, under bench/run.sh, a section of its report).
#
#   bench/state.sh [--quick] [--no-build] [--out-dir DIR]
#
# --quick      fewer iterations, 8 s throughput steps and 2 000 executions for
#              the RSS check (which then cannot meet the 10 000 target)
# --out-dir    write state.md (a markdown section) and summary.json there
#              instead of a results file (bench/run.sh uses this)
#
# Steps come from examples/state.rs (deno_core directly, the server's own heap
# format and directory store); server figures from a stateful mcp-v8 through
# POST /api/exec and GET /api/executions/{id}.
set -euo pipefail
source "$(dirname "$0")/common.sh"

QUICK=0
BUILD=1
OUT_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --out-dir) OUT_DIR="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "state.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

ITERATIONS=15
THROUGHPUT_SECONDS=20
RSS_EXECUTIONS=10000
SERVER_REPEATS=5
if [ "$QUICK" = 1 ]; then
  ITERATIONS=5
  THROUGHPUT_SECONDS=8
  RSS_EXECUTIONS=2000
  SERVER_REPEATS=3
fi
RSS_WARMUP=300
# The same ~10 MB of objects as examples/state.rs.
TEN_MB_JS="globalThis.data = Array.from({length: 52000}, (_, i) => ({id: i, name: 'item-' + i, score: i / 7, tags: ['t' + (i % 10)]})); data.length"

prepare_run mcp-v8-state

wait_quiet
log "state: snapshot steps in process (examples/state, $ITERATIONS iterations)"
"$EXAMPLES/state" --json --iterations "$ITERATIONS" >"$WORK/micro.jsonl"
log "state: $(tr '\n' ' ' <"$WORK/micro.jsonl")"

# exec BODY — POST /api/exec; prints the answer.
exec_json() {
  curl -fsS -m 120 -H 'content-type: application/json' --data-binary "$1" "$SERVER_URL/api/exec"
}
median() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print "n/a"; else print v[int((NR + 1) / 2)]}'; }

: >"$WORK/server.jsonl"
: >"$WORK/throughput.jsonl"
for workers in 1 2; do
  start_server "$WORK/server-$workers.log" --state-dir "$WORK/state-$workers" \
    --directory-path "$WORK/heaps-$workers" --max-concurrent-executions "$workers" --heap-memory-cap 64
  log "state: stateful server with $workers worker(s) at $SERVER_URL"
  if [ "$workers" = 1 ]; then
    # One execution at a time, so duration_ms is the service time.
    for heap in trivial 10mb; do
      if [ "$heap" = trivial ]; then code='1 + 1'; probe='typeof globalThis'; else code="$TEN_MB_JS"; probe='data.length'; fi
      for _ in $(seq 1 "$SERVER_REPEATS"); do
        first="$(exec_json "$(jq -nc --arg code "$code" '{code: $code, heap_memory_max_mb: 64}')")"
        [ "$(jq -r .status <<<"$first")" = completed ] || { log "state: failed: $first"; exit 1; }
        id="$(jq -r .execution_id <<<"$first")"
        key="$(jq -r .heap <<<"$first")"
        size="$(curl -fsS "$SERVER_URL/api/executions/$id" | jq .heap_size_bytes)"
        second="$(exec_json "$(jq -nc --arg code "$probe" --arg heap "$key" '{code: $code, heap: $heap, heap_memory_max_mb: 64}')")"
        [ "$(jq -r .status <<<"$second")" = completed ] || { log "state: resume failed: $second"; exit 1; }
        jq -nc --arg heap "$heap" --argjson a "$(jq .duration_ms <<<"$first")" --argjson b "$(jq .duration_ms <<<"$second")" \
          --argjson size "$size" '{heap: $heap, first_ms: $a, resume_ms: $b, heap_size_bytes: $size}' >>"$WORK/server.jsonl"
      done
    done
  fi
  wait_quiet
  out="$("$EXAMPLES/loadgen" --url "$SERVER_URL/api/exec" --closed $((2 * workers)) --duration "$THROUGHPUT_SECONDS" --label "workers-$workers")"
  jq -c --argjson w "$workers" '. + {workers: $w}' <<<"$out" >>"$WORK/throughput.jsonl"
  log "state: $workers worker(s): $(jq -r '"\(.achieved_per_s)/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, success \(.success_pct) %"' <<<"$out")"
  if [ "$workers" = 2 ]; then
    "$EXAMPLES/loadgen" --url "$SERVER_URL/api/exec" --closed 4 --count "$RSS_WARMUP" >/dev/null
    pids_before="$(worker_pids "$SERVER_PID" | sort | tr '\n' ' ')"
    rss_before="$(workers_rss_kib "$SERVER_PID")"
    server_rss_before="$(rss_kib "$SERVER_PID")"
    log "state: after $RSS_WARMUP warm-up executions: workers ($pids_before) RSS $rss_before KiB, server RSS $server_rss_before KiB"
    out="$("$EXAMPLES/loadgen" --url "$SERVER_URL/api/exec" --closed 4 --count "$RSS_EXECUTIONS" --label rss)"
    pids_after="$(worker_pids "$SERVER_PID" | sort | tr '\n' ' ')"
    rss_after="$(workers_rss_kib "$SERVER_PID")"
    server_rss_after="$(rss_kib "$SERVER_PID")"
    log "state: after $RSS_EXECUTIONS more: workers ($pids_after) RSS $rss_after KiB, server RSS $server_rss_after KiB; $(jq -c '{successes, achieved_per_s, first_error}' <<<"$out")"
    jq -nc --argjson before "$rss_before" --argjson after "$rss_after" \
      --argjson sbefore "$server_rss_before" --argjson safter "$server_rss_after" \
      --arg pids_before "$pids_before" --arg pids_after "$pids_after" \
      --argjson n "$RSS_EXECUTIONS" --argjson ok "$(jq .successes <<<"$out")" --argjson rate "$(jq .achieved_per_s <<<"$out")" \
      '{before_kib: $before, after_kib: $after, server_before_kib: $sbefore, server_after_kib: $safter,
        pids_before: $pids_before, pids_after: $pids_after, executions: $n, successes: $ok, rate: $rate,
        drift_pct: ((($after - $before) * 1000 / $before | round) / 10)}' >"$WORK/rss.json"
  fi
  stop_server
done

# ---------------------------------------------------------------------------
micro() { jq -r --arg heap "$1" "select(.heap == \$heap) | $2" "$WORK/micro.jsonl"; }
server_median() { jq -r --arg heap "$1" "select(.heap == \$heap) | $2" "$WORK/server.jsonl" | median; }
kb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1000}'; }

section="$WORK/state.md"
{
  echo "## Stateful: snapshots, restores, throughput, RSS"
  echo
  echo "**Steps in process** (\`examples/state.rs\`: deno_core directly, the server's heap format = header + zstd level 1,"
  echo "the server's \`DirectoryStore\`; medians of $ITERATIONS runs):"
  echo
  echo "| heap | live heap | create runtime | run script | \`snapshot()\` | raw size | compress | compressed size | store write (fsync) | store read | decompress | restore (runtime from blob + read a value + drop) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for heap in trivial 10mb; do
    echo "| $heap | $(kb "$(micro "$heap" .live_heap_bytes)") KB | $(micro "$heap" '.create_ms * 100 | round / 100') ms | $(micro "$heap" '.script_ms * 100 | round / 100') ms | $(micro "$heap" '.snapshot_ms * 100 | round / 100') ms | $(kb "$(micro "$heap" .raw_bytes)") KB | $(micro "$heap" '.compress_ms * 100 | round / 100') ms | **$(kb "$(micro "$heap" .compressed_bytes)") KB** | $(micro "$heap" '.store_write_ms * 100 | round / 100') ms | $(micro "$heap" '.store_read_ms * 100 | round / 100') ms | $(micro "$heap" '.decompress_ms * 100 | round / 100') ms | $(micro "$heap" '.restore_ms * 100 | round / 100') ms |"
  done
  echo
  echo "Compression alternatives (measured on the same blobs; the server uses neither):"
  echo
  echo "| heap | zstd level 1 (server) | zstd level 3 | zstd level 3 with the base snapshot as reference prefix | its decompression |"
  echo "|---|---|---|---|---|"
  for heap in trivial 10mb; do
    echo "| $heap | $(micro "$heap" '.compress_ms * 100 | round / 100') ms, $(kb "$(micro "$heap" .compressed_bytes)") KB | $(micro "$heap" '.level3_ms * 100 | round / 100') ms, $(kb "$(micro "$heap" .level3_bytes)") KB | $(micro "$heap" '.prefix_ms * 100 | round / 100') ms, $(kb "$(micro "$heap" .prefix_bytes)") KB | $(micro "$heap" '.prefix_decompress_ms * 100 | round / 100') ms |"
  done
  echo
  echo "The steps' base snapshot is a trivial one; mcp-v8's own startup snapshot also holds its bootstrap JS, so its heaps are a little larger:"
  echo
  echo "| heap | engine in process: stateful run from the startup snapshot | heap object (as stored) | engine: run resuming that heap | server (1 worker): \`duration_ms\` fresh | server: \`heap_size_bytes\` | server: \`duration_ms\` resuming |"
  echo "|---|---|---|---|---|---|---|"
  for heap in trivial 10mb; do
    echo "| $heap | $(micro "$heap" '.engine_first_ms * 100 | round / 100') ms | $(kb "$(micro "$heap" .engine_heap_bytes)") KB | $(micro "$heap" '.engine_resume_ms * 100 | round / 100') ms | $(server_median "$heap" .first_ms) ms | $(kb "$(server_median "$heap" .heap_size_bytes)") KB | $(server_median "$heap" .resume_ms) ms |"
  done
  echo
  echo "(Server figures: medians of $SERVER_REPEATS; \`duration_ms\` is whole milliseconds. A resumed execution is snapshotted again afterwards, as every stateful execution is.)"
  echo
  echo "**Stateful throughput** (closed loop, 2 clients per worker, ${THROUGHPUT_SECONDS} s, the eight snippets, no \`heap\`):"
  echo
  echo "| workers | executions/s | p50 ms | p99 ms | success % |"
  echo "|---|---|---|---|---|"
  jq -r '"| \(.workers) | \(.achieved_per_s) | \(.latency_ms.p50) | \(.latency_ms.p99) | \(.success_pct) |"' "$WORK/throughput.jsonl"
  echo
  echo "**Worker RSS** (2 workers; sum of the \`mcp-v8 worker\` processes' VmRSS):"
  jq -r --argjson warmup "$RSS_WARMUP" '"after \($warmup) warm-up executions \(.before_kib) KiB; after \(.executions) more stateful executions (\(.successes) succeeded, \(.rate)/s) \(.after_kib) KiB: **\(.drift_pct) %**. Worker PIDs \(if .pids_before == .pids_after then "unchanged (no worker was replaced)" else "changed: \(.pids_before)→ \(.pids_after)" end). Server process RSS \(.server_before_kib) → \(.server_after_kib) KiB."' "$WORK/rss.json"
} >"$section"

# The target is about what the server stores: its heap object for `1 + 1`.
jq -n --argjson trivial "$(server_median trivial .heap_size_bytes)" --slurpfile rss "$WORK/rss.json" \
  '{trivial_compressed_kb: ($trivial / 100 | round / 10), rss_drift_pct: $rss[0].drift_pct, rss_executions: $rss[0].successes}' \
  >"$WORK/summary.json"

if [ -n "$OUT_DIR" ]; then
  mkdir -p "$OUT_DIR"
  cp "$section" "$WORK/summary.json" "$OUT_DIR/"
else
  report="$BENCH_DIR/results/$(date +%F)-$(topology)-state$([ "$QUICK" = 1 ] && echo -quick || true).md"
  {
    echo "# mcp-v8 stateful benchmark — $(date +%F), $(topology)"
    echo
    echo "**Machine:** $(machine_description)"
    echo
    cat "$section"
    echo
    echo "Targets: compressed trivial snapshot ≤ 250 KB: $(jq .trivial_compressed_kb "$WORK/summary.json") KB;"
    echo "worker RSS within ±10 % over 10 000 stateful executions: $(jq .rss_drift_pct "$WORK/summary.json") % over $(jq .rss_executions "$WORK/summary.json")."
  } >"$report"
  log "report: $report"
  cat "$report"
fi
