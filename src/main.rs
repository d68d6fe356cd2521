//! `mcp-v8`: parse the command line, build the parts, wire them together.

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use mcp_v8::cli::{self, Cli, Command};
use mcp_v8::config::Config;
use mcp_v8::executor::records::Retention;
use mcp_v8::executor::{Executor, ExecutorConfig, worker};
use mcp_v8::tools::McpV8;
use mcp_v8::transport;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command_or_serve() {
        Command::Config(command) => cli::run_config_command(&command),
        Command::Worker => {
            init_logging("info");
            worker::child::run()
        }
        Command::Serve => {
            let config = cli::load(&cli)?;
            config.ensure_supported()?;
            init_logging(&config.server.log_level);
            tokio::runtime::Runtime::new()
                .context("starting the async runtime")?
                .block_on(serve(config))
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let executor = Executor::start(executor_config(&config)?).await?;
    let result = transport::serve_stdio(McpV8::new(executor.clone())).await;
    executor.shutdown().await;
    result
}

fn executor_config(config: &Config) -> anyhow::Result<ExecutorConfig> {
    let limits = &config.limits;
    Ok(ExecutorConfig {
        state_dir: config.state_dir(),
        worker_exe: std::env::current_exe().context("locating the mcp-v8 binary")?,
        max_concurrent: limits.max_concurrent_executions,
        max_queued: limits.max_queued_executions,
        default_heap_mb: limits.heap_memory_max_mb,
        heap_cap_mb: limits.heap_memory_cap_mb,
        default_timeout_secs: limits.execution_timeout_secs,
        max_timeout_secs: limits.execution_timeout_secs,
        max_output_bytes: limits.max_output_bytes,
        max_code_bytes: limits.max_code_bytes,
        retention: Retention {
            max_count: config.executions.retain_count,
            max_age: config
                .executions
                .retain_max_age_secs
                .map(std::time::Duration::from_secs),
        },
    })
}

/// Logs go to stderr: on stdio, stdout is the MCP channel.
fn init_logging(default_directive: &str) {
    let filter = EnvFilter::try_from_env("MCP_V8_LOG")
        .or_else(|_| EnvFilter::try_new(default_directive))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
