# Sourced by .ci/run: a throwaway PostgreSQL server from Debian's package, on loopback only,
# for the tests that run workers against PostgreSQL. Exports CATDOG_TEST_POSTGRES_URL, and
# CATDOG_TEST_POSTGRES_CTL: a script that stops (`$CATDOG_TEST_POSTGRES_CTL stop`) and starts
# the server again, for the tests of a database that goes away mid-trial. The server, its data
# folder and that script are removed when the sourcing shell exits.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_port=${CATDOG_CI_PG_PORT:-54329}
pg_data=$(mktemp -d /tmp/catdog-ci-pg.XXXXXX)
pg_ctl_script=$(mktemp /tmp/catdog-ci-pg-ctl.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then  # initdb refuses to run as root
  chown postgres "$pg_data"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres >/dev/null
cat >"$pg_ctl_script" <<SCRIPT
#!/usr/bin/env bash
# stop | start: the throwaway PostgreSQL server of .ci/postgres.sh on 127.0.0.1:$pg_port
case "\$1" in
  start) exec ${as_pg[*]} "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w \\
           -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_data" start ;;
  stop) exec ${as_pg[*]} "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop ;;
  *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
SCRIPT
chmod +x "$pg_ctl_script"
"$pg_ctl_script" start >/dev/null
stop_postgres() {
  "$pg_ctl_script" stop >/dev/null 2>&1 || true
  rm -rf "$pg_data" "$pg_ctl_script"
}
trap stop_postgres EXIT
"${as_pg[@]}" "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -q -c "CREATE DATABASE catdog_test" >/dev/null
export CATDOG_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$pg_port/catdog_test"
export CATDOG_TEST_POSTGRES_CTL="$pg_ctl_script"
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port for the tests"
