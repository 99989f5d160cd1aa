#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for engram's tests and benchmarks, reachable only through a Unix socket.
#
#   scripts/pg-cluster.sh start DIR   initdb into DIR/data, start it with its socket in DIR, create database
#                                     "engram"; prints the libpq connection string (also written to DIR/conninfo)
#   scripts/pg-cluster.sh stop DIR    stop the server and remove DIR
#   scripts/pg-cluster.sh status DIR  exit 0 when it is running
#   scripts/pg-cluster.sh pause DIR   stop the server (pg_ctl stop -m fast), keeping DIR and its data
#   scripts/pg-cluster.sh resume DIR  start a paused server again, with the options of `start`
#   scripts/pg-cluster.sh createdb DIR NAME   create database NAME (e.g. a second shard) in the running cluster
#
# The binaries come from $PG_BINDIR, else `pg_config --bindir`, else /usr/lib/postgresql/<newest>/bin.
# When they are missing, `start` prints "postgres: skipped: ..." and exits 0 without a cluster (DIR/conninfo
# is then absent), so callers can skip their tests with a clear message.
# initdb refuses to run as root: then the cluster runs as the user `postgres` (else `nobody`) via runuser,
# DIR is given to that user, and root still connects through the socket (trust authentication, user engram).
# ENGRAM_PG_FSYNC=off starts the server without fsync (faster tests; nothing survives a machine crash).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|status|pause|resume DIR | createdb DIR NAME" >&2
  exit 2
fi

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then echo "$PG_BINDIR"; return; fi
  if command -v pg_config >/dev/null 2>&1; then
    local b; b=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$b" ] && [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ]; then echo "$b"; return; fi
  fi
  local best=""
  for b in /usr/lib/postgresql/*/bin; do
    [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ] && best=$b
  done
  echo "$best"
}

bindir=$(find_bindir)
as_owner=()
owner=""
if [ "$(id -u)" = 0 ]; then
  if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
  as_owner=(runuser -u "$owner" --)
fi

case "$cmd" in
  start)
    if [ -z "$bindir" ]; then
      echo "postgres: skipped: PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql or set PG_BINDIR"
      exit 0
    fi
    # a previous run's leftovers: stop and wipe
    if [ -f "$dir/data/postmaster.pid" ]; then
      "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 755 "$dir"
    if [ -n "$owner" ]; then chown "$owner" "$dir"; fi
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U engram --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
      echo "postgres: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }
    opts="-k $dir -c listen_addresses='' -c max_connections=200 -c shared_buffers=64MB"
    if [ "${ENGRAM_PG_FSYNC:-on}" = off ]; then opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
    echo "$opts" >"$dir/opts"
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "$opts" start >/dev/null || {
      echo "postgres: pg_ctl start failed:" >&2; cat "$dir/server.log" >&2; exit 1; }
    "$bindir/createdb" -h "$dir" -U engram engram
    echo "host=$dir user=engram dbname=engram" >"$dir/conninfo"
    cat "$dir/conninfo"
    ;;
  stop)
    if [ -n "$bindir" ] && [ -f "$dir/data/postmaster.pid" ]; then
      "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    echo "postgres: cluster in $dir stopped and removed"
    ;;
  pause)
    [ -n "$bindir" ] && [ -f "$dir/data/postmaster.pid" ] || { echo "postgres: no running cluster in $dir" >&2; exit 1; }
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
    ;;
  resume)
    [ -n "$bindir" ] && [ -f "$dir/opts" ] || { echo "postgres: no paused cluster in $dir" >&2; exit 1; }
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "$(cat "$dir/opts")" start >/dev/null
    ;;
  createdb)
    name=${3:-}
    [ -n "$bindir" ] && [ -n "$name" ] || { echo "usage: $0 createdb DIR NAME" >&2; exit 2; }
    "$bindir/createdb" -h "$dir" -U engram "$name"
    ;;
  status)
    [ -n "$bindir" ] && [ -f "$dir/data/postmaster.pid" ] && "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null
    ;;
  *)
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
    ;;
esac
