//! The README must stay true: its configuration reference is the binary's own
//! `config default` output, and CI runs the README's test command.

use std::process::Command;

const README: &str = include_str!("../README.md");
const CI_RUN: &str = include_str!("../.ci/run");

/// The default for `max_concurrent_executions` is the host's CPU count; the
/// comparison must not depend on the machine.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("# max_concurrent_executions = ") {
                "# max_concurrent_executions = <cpus>"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn config_reference_matches_config_default() {
    let output = Command::new(env!("CARGO_BIN_EXE_mcp-v8"))
        .args(["config", "default"])
        .output()
        .expect("run mcp-v8 config default");
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).expect("utf-8");

    let begin = "<!-- config-default:begin -->\n```toml\n";
    let end = "```\n<!-- config-default:end -->";
    let start = README.find(begin).expect("begin marker") + begin.len();
    let stop = README[start..].find(end).expect("end marker") + start;
    assert_eq!(
        normalize(&README[start..stop]),
        normalize(&generated),
        "README's configuration reference is stale: paste `mcp-v8 config default` into it"
    );
}

#[test]
fn ci_runs_the_readme_test_command() {
    assert!(README.contains("./dev test"));
    assert!(
        CI_RUN.lines().any(|line| line.trim() == "./dev test"),
        ".ci/run must run the README's test command"
    );
}
