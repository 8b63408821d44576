DROP TABLE mcp_server_logs;
DROP TABLE mcp_request_logs;
DROP TABLE mcp_client_activity_metrics;
DROP TABLE mcp_client_activity;
