DROP TABLE team_cloud_credentials;
DROP TABLE global_settings;
DROP TABLE global_setting_groups;
