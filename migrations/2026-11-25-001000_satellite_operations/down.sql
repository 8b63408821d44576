DROP TABLE satellite_usage_logs;
DROP TABLE satellite_heartbeats;
DROP TABLE satellite_processes;
DROP TABLE satellite_commands;
