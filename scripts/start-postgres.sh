#!/usr/bin/env bash
# Start Debian's PostgreSQL on 127.0.0.1:5432 for the test suite and create the test database.
# Idempotent; prints the URL the tests read from MEMEBOT_TEST_POSTGRES_URL.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null; then
  echo "start-postgres: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_createcluster "$version" main --port 5432 >/dev/null
  cluster="$version main"
fi
set -- $cluster
status=$(pg_lsclusters --no-header | awk -v v="$1" -v n="$2" '$1==v && $2==n {print $4}')
[ "$status" = "online" ] || pg_ctlcluster "$1" "$2" start
port=$(pg_lsclusters --no-header | awk -v v="$1" -v n="$2" '$1==v && $2==n {print $3}')
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -h 127.0.0.1 -p $port" && break
  sleep 1
done
su postgres -c "psql -q -p $port -c \"ALTER USER postgres PASSWORD 'postgres'\""
su postgres -c "psql -q -p $port -tc \"SELECT 1 FROM pg_database WHERE datname='memebot_test'\"" | grep -q 1 \
  || su postgres -c "createdb -p $port memebot_test"
echo "postgresql+asyncpg://postgres:postgres@127.0.0.1:$port/memebot_test"
