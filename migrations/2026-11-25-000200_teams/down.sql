DROP TABLE user_preferences;
DROP TABLE team_memberships;
DROP TABLE teams;
