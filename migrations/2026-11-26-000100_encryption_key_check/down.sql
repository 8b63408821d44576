DROP TABLE encryption_key_check;
