DROP TABLE deploystack_setup;
