DROP TABLE satellite_registration_tokens;
DROP TABLE satellites;
