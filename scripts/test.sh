#!/usr/bin/env bash
# The whole test suite, as README.md gives it: installs the services the cluster tests start
# on their own (redis-server, PostgreSQL) if they are missing, then runs every test of the
# workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ci-services.sh
cargo test --workspace "$@"
