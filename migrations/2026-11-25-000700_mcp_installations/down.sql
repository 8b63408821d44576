DROP TABLE oauth_pending_flows;
DROP TABLE mcp_oauth_tokens;
DROP TABLE mcp_tool_metadata;
DROP TABLE mcp_server_instances;
DROP TABLE mcp_user_configurations;
DROP TABLE mcp_server_installations;
