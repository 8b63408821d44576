#!/bin/sh
# Run once by the postgres image when it initializes the primary's data folder: lets the
# optional `postgres-replica` service (compose profile `replica`) stream from it.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
