//! MCP over HTTP: Streamable HTTP at `/mcp`, legacy SSE at `/sse` + `/message`.
