DROP TABLE mcp_oauth_providers;
DROP TABLE deployment_credentials;
DROP TABLE deployment_settings;
DROP TABLE mcp_server_versions;
DROP TABLE mcp_server_config_schemas;
DROP TABLE mcp_servers;
DROP TABLE mcp_categories;
