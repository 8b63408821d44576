#!/bin/sh
# The optional read replica (compose profile `replica`): on first start, copies the primary
# with pg_basebackup (-R writes the standby settings), then runs as a hot standby.
set -eu
if [ ! -s "${PGDATA}/PG_VERSION" ]; then
    until pg_isready -q -h postgres -U "${POSTGRES_USER}"; do
        sleep 1
    done
    PGPASSWORD="${POSTGRES_PASSWORD}" pg_basebackup -h postgres -U "${POSTGRES_USER}" \
        -D "${PGDATA}" -R -X stream
    chmod 700 "${PGDATA}"
fi
exec postgres -c hot_standby=on
