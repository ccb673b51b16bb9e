#!/usr/bin/env bash
# Installs the services the cluster tests start on their own (redis-server, and PostgreSQL's
# initdb/pg_ctl/postgres), and iproute2 for the network-namespace test, when they are
# missing, so that no test is skipped for want of them.
# Idempotent: it does nothing on a machine that has them.
set -euo pipefail

have_pg() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The multicast test across network namespaces (tests/netns.rs) makes them with `ip`.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
have_pg || missing+=(postgresql)

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
# The Debian package starts a redis-server on port 6379 through its init script when a
# service manager runs; the tests use their own instances on free ports, so it does no harm.
command -v redis-server
have_pg && echo "postgresql: ok"
