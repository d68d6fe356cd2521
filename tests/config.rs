//! `mcp-v8 config check FILE`.

mod common;

use std::process::{Command, Output};

fn config_check(contents: &str) -> (tempfile::TempDir, std::path::PathBuf, Output) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("mcp-v8.toml");
    std::fs::write(&path, contents).expect("write the config file");
    let output = Command::new(common::BIN)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("run mcp-v8 config check");
    (dir, path, output)
}

/// True if `number` appears in `text` as a whole number (e.g. "line 3" or
/// "3:1", but not "13").
fn mentions_number(text: &str, number: u64) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|digits| digits.parse() == Ok(number))
}

#[test]
fn unknown_key_is_reported_with_its_line() {
    let (_dir, path, output) = config_check(
        "# mcp-v8 test configuration\n\
         [limits]\n\
         no_such_limit = 1\n",
    );
    assert!(!output.status.success(), "accepted an unknown key");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no_such_limit"), "{stderr}");
    // The temporary path may contain digits of its own.
    let message = stderr.replace(&path.display().to_string(), "FILE");
    assert!(mentions_number(&message, 3), "no line number in {stderr}");
}

#[test]
fn valid_file_is_accepted() {
    let (_dir, path, output) = config_check(
        "# mcp-v8 test configuration\n\
         [limits]\n\
         heap_memory_max_mb = 64\n\
         execution_timeout_secs = 10\n",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rejected a valid file: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("ok: {}", path.display())),
        "{stdout}"
    );
}

/// `mcp-v8 config default` with `env` set, or with `args` before it.
fn config_default_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(common::BIN)
        .args(args)
        .args(["config", "default"])
        .envs(env.iter().copied())
        .output()
        .expect("run mcp-v8 config default")
}

/// A bad value from a variable names the variable (clap names only the
/// flag), and an empty variable is unset, not an empty value to refuse.
#[test]
fn environment_variables_are_named_and_empty_ones_unset() {
    let output = config_default_with(&[("MCP_V8_HEAP_MEMORY_MAX", "abc")], &[]);
    assert!(!output.status.success(), "accepted abc");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--heap-memory-max")
            && stderr.contains("environment variable MCP_V8_HEAP_MEMORY_MAX"),
        "{stderr}"
    );
    // From the command line, the flag is what is wrong.
    let output = config_default_with(
        &[("MCP_V8_HEAP_MEMORY_MAX", "abc")],
        &["--heap-memory-max=x"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && !stderr.contains("environment variable"),
        "{stderr}"
    );

    let output = config_default_with(
        &[
            ("MCP_V8_HTTP_PORT", ""),
            ("MCP_V8_STATELESS", ""),
            ("MCP_V8_CONFIG", ""),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}

/// A start-up error is one line that says each cause once: anyhow's report
/// repeated the I/O error under "Caused by" (and a file where the state
/// directory should be was only "File exists").
#[test]
fn start_up_errors_say_each_cause_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").expect("a file");
    let cases = [
        (
            vec![
                format!("--state-dir={}", dir.path().join("state").display()),
                "--http-port=0".into(),
                "--auth-tokens-file=/nonexistent".into(),
            ],
            "No such file or directory",
        ),
        (
            vec![format!("--state-dir={}", not_a_dir.display())],
            "not a directory",
        ),
    ];
    for (args, cause) in cases {
        let output = Command::new(common::BIN)
            .arg("--stateless")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("run mcp-v8");
        assert!(!output.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let error = stderr
            .lines()
            .find(|line| line.starts_with("Error: "))
            .unwrap_or_else(|| panic!("no error line: {stderr}"));
        assert_eq!(error.matches(cause).count(), 1, "{stderr}");
        assert!(!stderr.contains("Caused by"), "{stderr}");
    }
}

/// A refused combination says where each of its keys was set: a variable in
/// a unit file and a line of the config file are otherwise hard to connect
/// to the key names the message uses.
#[test]
fn refusals_say_where_each_key_was_set() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("mcp-v8.toml");
    std::fs::write(
        &file,
        "[server]\nlog_level = \"info\"\n\n[storage]\ndirectory_path = \"/srv/heaps\"\n",
    )
    .expect("write the config file");
    let refusal = |env: &[(&str, &str)], args: &[&str]| {
        let output = Command::new(common::BIN)
            .args(args)
            .env_remove("MCP_V8_STATELESS")
            .env_remove("MCP_V8_DIRECTORY_PATH")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run mcp-v8");
        assert!(!output.status.success(), "{env:?} {args:?} started");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let config = format!("--config={}", file.display());

    let stderr = refusal(&[("MCP_V8_STATELESS", "true")], &[&config]);
    let expected = format!(
        "storage.stateless is set by MCP_V8_STATELESS, storage.directory_path by {}:5",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let stderr = refusal(&[], &["--stateless", "--directory-path=/srv/other"]);
    assert!(
        stderr.contains(
            "storage.stateless is set by --stateless, storage.directory_path by --directory-path"
        ),
        "{stderr}"
    );

    // A requirement left at its default is not said to be set anywhere.
    let stderr = refusal(&[], &["--cache-max-mb", "64"]);
    assert!(
        stderr.contains("storage.cache_max_mb requires storage.cache_dir")
            && stderr.contains("(storage.cache_max_mb is set by --cache-max-mb)"),
        "{stderr}"
    );
}

/// A V8 flag V8 does not know stops the server at start with the variable
/// named; each worker used to print V8's complaint to its stderr, ignore
/// the flags after it, and run.
#[test]
fn unknown_v8_flags_stop_the_server() {
    let state = tempfile::tempdir().expect("temporary directory");
    let start = |flags: &str| {
        Command::new(common::BIN)
            .args(["--stateless", "--state-dir"])
            .arg(state.path())
            .env("MCP_V8_V8_FLAGS", flags)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run mcp-v8")
    };
    let output = start("--max-lazy --no-such-flag");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Error: MCP_V8_V8_FLAGS: V8 did not take --no-such-flag ("),
        "{stderr}"
    );
    // Known flags start it (and stdin at EOF ends it).
    let output = start("--max-lazy");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}
