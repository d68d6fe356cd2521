//! The texts a model reads about this server and its tools.
//!
//! They are kept together, apart from the code, because they are one
//! document: they describe the same asynchronous model and must agree with each
//! other and with the parameter descriptions in [`super::params`].

/// Server instructions sent at initialization: [`EXECUTION_INSTRUCTIONS`]
/// followed by what this server keeps between executions, which depends on
/// whether it is stateful (has a session store).
pub fn instructions(stateful: bool) -> String {
    let state = if stateful {
        STATEFUL_INSTRUCTIONS
    } else {
        STATELESS_INSTRUCTIONS
    };
    format!("{EXECUTION_INSTRUCTIONS} {state}")
}

/// The asynchronous model, common to stateless and stateful servers.
const EXECUTION_INSTRUCTIONS: &str = "\
mcp-v8 runs JavaScript and TypeScript in isolated V8 runtimes. Executions are asynchronous:
1. run_js starts an execution and returns its execution_id at once. For short scripts, pass \
wait_ms (e.g. 5000) to get the result or error in the same call.
2. get_execution reports the status (queued, running, completed, failed, cancelled, timed_out) \
and, once final, the result or the error.
3. get_execution_output pages through the execution's console output, by lines (default) or by \
bytes, with 0-based offsets; it works while the execution is still running.
cancel_execution stops a queued or running execution. list_executions lists the executions the \
server holds, including those from before a server restart.";

const STATELESS_INSTRUCTIONS: &str = "\
Every execution starts from a fresh global scope: nothing carries over from one execution to the \
next.";

const STATEFUL_INSTRUCTIONS: &str = "\
This server is stateful: a completed execution leaves a heap snapshot of its global scope, named by \
the `heap` that get_execution reports (64 hexadecimal characters); a failed, timed-out or cancelled \
one leaves none. Pass it as run_js `heap` to \
continue from that state. Pass `session` (a name of your choice) to log executions under it; a \
run with `session` but no `heap` resumes the session's latest heap, so a session behaves like a \
persistent REPL. list_sessions and list_session_snapshots show the sessions and the heaps their \
executions started from and left. Tags label heaps so they can be found again: run_js `tags` \
tags the heap an execution produces; get_heap_tags, set_heap_tags, delete_heap_tags and \
query_heaps_by_tags read and change them.";

pub const RUN_JS: &str = "\
Start running JavaScript or TypeScript in a fresh, isolated V8 runtime. Answers at once with an \
execution_id while the code runs in the background (or waits up to wait_ms for it to finish).

`code` may be a plain script or an ES module: top-level `await` and `export` are allowed; \
`import` of other modules is not supported yet. TypeScript (type annotations, interfaces, enums) is accepted. The result is the code's \
completion value as eval gives it (the value of the last expression statement run, also inside \
if/else, loops, switch and try; end the code with the value, as `return` is only for functions), \
awaited if it is a Promise, as text: strings as they are \
('hello' gives hello), objects and arrays as JSON ({a:1} gives {\"a\":1}), other values as \
JavaScript writes them (undefined, null, 42, 10n). The execution finishes once that value is \
settled and no timers or other pending work remain. A thrown error, a rejected promise or a \
syntax error ends it as failed, with the message, stack and line:column in `error` (a thrown \
value shown as console.log shows it, with an Error's own properties and cause).

Console output (console.log and the other console methods) is not part of the answer: read it \
with get_execution_output.

With wait_ms > 0 (at most 30000) the call returns as soon as the execution finishes, including \
`result` (status completed) or `error` (failed, timed_out, cancelled); if it is still running \
when wait_ms elapses, poll get_execution with the execution_id. heap_memory_max_mb and \
execution_timeout_secs override the server's limits for this execution only. When the server is \
busy (all runtimes in use and the queue full) the call fails with a message saying so; retry \
later.

Stateful servers only (a stateless server rejects these): `heap` resumes from a heap snapshot, the \
global scope an earlier execution left (get_execution reports it as `heap`); `session` logs the \
execution under that name and, with `session` but no `heap`, the run resumes the session's latest \
heap; `tags` labels the heap this execution produces (see set_heap_tags).";

pub const LIST_SESSIONS: &str = "\
List the names of every session, in byte order. A session is created by the first run_js call \
that names it in `session`, and logs every execution run with it, including those from before a \
server restart. Use list_session_snapshots for a session's executions and heaps.";

pub const LIST_SESSION_SNAPSHOTS: &str = "\
List the executions logged in a session, oldest first. Each entry has its `index` in the session \
(0-based, without gaps), execution_id, final status, `input_heap` (the heap snapshot it started, \
or was to start, from; null for a fresh start), `output_heap` (the heap snapshot it left; null if none was saved), \
its `code`, and `timestamp` (when it finished, RFC 3339, UTC). Pass an output_heap as run_js \
`heap` to continue from that point, or run with the `session` alone to continue from the latest.

`fields` (comma-separated, e.g. \"index,output_heap\") limits each entry to the named fields among \
index, input_heap, output_heap, code and timestamp; execution_id and status are always included. \
Leave code out to keep the answer short. Default: every field. An unknown session is an error; \
list_sessions shows the existing ones.

The answer is a page of at most `limit` entries (default 1000) from index `offset` (default 0), \
with `total`, the session's number of executions, and `next_offset` to pass as `offset` for the \
next page (null on the last). To see only the latest executions, pass offset = total - a few.";

pub const GET_HEAP_TAGS: &str = "\
Get the tags of a heap snapshot: the string key/value labels set on it with set_heap_tags or run_js \
`tags`. A heap without tags gives an empty object.";

pub const SET_HEAP_TAGS: &str = "\
Replace all tags of a heap snapshot with `tags`, an object of string values: tags not in it are \
removed, and an empty object removes them all (delete_heap_tags removes only some). Keys are 1 to \
128 characters, values at most 1024, and a heap carries at most 64 tags. The heap must be one the \
store holds (the `heap` of a completed execution): any other hash fails with \"heap not found\". \
Returns the heap's tags as now stored.";

pub const DELETE_HEAP_TAGS: &str = "\
Remove tags from a heap snapshot: those whose keys are listed in `keys`, or all of them when `keys` \
is omitted. Keys the heap does not carry are ignored, so repeating the call is harmless. Returns \
the tags that remain.";

pub const QUERY_HEAPS_BY_TAGS: &str = "\
Find heap snapshots by their tags: every heap whose tags include all the key/value pairs in \
`tags` (exact, case-sensitive matches), with all of its tags, ordered by heap. An empty object \
lists every tagged heap. Answers a page: at most `limit` matches (default 1000, at most 10000) \
from position `offset` (default 0), with `total` and `next_offset` (null on the last page). Pass \
a heap found here as run_js `heap` to continue from it.";

pub const GET_EXECUTION: &str = "\
Get an execution's current record: status, and once it has finished its `result` (status \
completed) or `error` (failed, timed_out, cancelled), with started_at/completed_at (RFC 3339, \
UTC) and duration_ms (from started_at to completed_at, or to now while in flight). Statuses: \
queued (waiting for a free runtime), running, then one of the final ones: completed, failed, \
cancelled, timed_out. Answers at once without waiting: poll until the status is final. Console \
output is read with get_execution_output.";

pub const GET_EXECUTION_OUTPUT: &str = "\
Read one page of an execution's console output: everything its code wrote with console.log and \
the other console methods, in order, each console call ending with a newline. Works while the \
execution is still running, so it can be followed, and after it has finished.

Line mode (default): line_offset (0-based, default 0) and line_limit (default 1000, at most \
10000) select whole lines, at most 1 MiB of them (a single longer line is cut at 1 MiB; read its \
rest from next_byte_offset in byte mode). Byte mode: byte_offset (0-based, default 0) and/or byte_limit (default \
65536, at most 1048576) select a range of bytes of the UTF-8 text; giving either selects byte \
mode. Line and byte parameters cannot be mixed in one call.

Each page reports where it lies in both units (start_line/end_line and start_byte/end_byte, end \
exclusive), the totals so far (total_lines, total_bytes), has_more (true when more output \
already follows this page) and the execution's status. To read on, call again with \
line_offset = next_line_offset (or byte_offset = next_byte_offset). While the status is queued \
or running, more output may still arrive after has_more turns false.";

pub const CANCEL_EXECUTION: &str = "\
Stop a queued or running execution. It ends with status cancelled, and the resulting record is \
returned (same fields as get_execution). Cancelling an execution that has already finished \
changes nothing and returns its record as it is, so repeating the call is harmless. Console \
output written before the cancellation remains readable with get_execution_output.";

pub const LIST_EXECUTIONS: &str = "\
List the executions the server holds, oldest first, including those from before a server \
restart: execution_id, status, started_at and completed_at (RFC 3339, UTC). Use get_execution \
for an execution's result or error, and get_execution_output for its console output.

The answer is a page of at most `limit` executions (default 1000) from position `offset` \
(default 0), with `total` and `next_offset` to pass as `offset` for the next page (null on the \
last). To see only the latest executions, pass offset = total - a few.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::output::{
        DEFAULT_BYTE_LIMIT, DEFAULT_LINE_LIMIT, MAX_BYTE_LIMIT, MAX_LINE_LIMIT,
    };
    use crate::tools::MAX_WAIT_MS;

    /// The numbers are written out for the model; this keeps them equal to
    /// the limits the code enforces.
    #[test]
    fn descriptions_state_the_enforced_limits() {
        for limit in [
            DEFAULT_LINE_LIMIT,
            MAX_LINE_LIMIT,
            DEFAULT_BYTE_LIMIT,
            MAX_BYTE_LIMIT,
        ] {
            assert!(GET_EXECUTION_OUTPUT.contains(&limit.to_string()), "{limit}");
        }
        assert!(RUN_JS.contains(&MAX_WAIT_MS.to_string()));
        for limit in [
            crate::sessions::MAX_TAG_KEY_CHARS,
            crate::sessions::MAX_TAG_VALUE_CHARS,
            crate::sessions::MAX_TAGS_PER_HEAP,
        ] {
            assert!(SET_HEAP_TAGS.contains(&limit.to_string()), "{limit}");
        }
    }

    #[test]
    fn instructions_say_whether_state_carries_over() {
        assert!(instructions(false).contains("nothing carries over"));
        let stateful = instructions(true);
        assert!(!stateful.contains("nothing carries over"));
        assert!(stateful.contains("resumes the session's latest heap"));
    }
}
