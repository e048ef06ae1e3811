//! Shared runtime of the mcp-foundry MCP servers.
