//! Transports that carry MCP to the tools.
