//! MCP tools: one function per tool, typed parameters, over the executor.
