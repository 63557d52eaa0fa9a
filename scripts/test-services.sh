#!/usr/bin/env bash
# test-services.sh makes the services dripflow's tests need reachable on this
# machine — Redis, PostgreSQL, MariaDB, NATS (with JetStream) and RabbitMQ,
# and Debian's chromium for the browser tests — and exports the URLs the
# tests read.
#
#   . scripts/test-services.sh          # start/install, then export the URLs
#   scripts/test-services.sh            # same, printing the export lines
#
# Debian's redis-sentinel (and redis-cli) are installed for the Sentinel and
# Cluster tests, which start their own servers.
#
# For each service: if it answers, it is left alone; if it is installed but
# stopped, it is started; if it is missing, it is installed with apt-get
# (as root, or through sudo). URLs already set in the environment are kept
# and not managed (point them anywhere you like).
#
# Exports DRIPFLOW_TEST_REDIS_URL, DRIPFLOW_TEST_POSTGRES_URL,
# DRIPFLOW_TEST_MYSQL_URL, DRIPFLOW_TEST_NATS_URL, DRIPFLOW_TEST_AMQP_URL and
# DRIPFLOW_TEST_CHROMIUM. Tests create their own throwaway databases, key
# prefixes, streams and queues under these, so packages run in parallel
# without sharing state.

_dft_main() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else sudo=""; fi
  fi
  local apt_updated=""

  _dft_log() { echo "test-services: $*" >&2; }

  _dft_install() { # packages…
    if ! command -v apt-get >/dev/null 2>&1; then
      _dft_log "cannot install $* (no apt-get); install it yourself or set the service URL"
      return 1
    fi
    if [ -z "$apt_updated" ]; then
      _dft_log "apt-get update"
      DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >&2 || return 1
      apt_updated=1
    fi
    _dft_log "installing $*"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
  }

  _dft_wait() { # description command…
    local what=$1; shift
    local i
    for i in $(seq 1 60); do
      if "$@" >/dev/null 2>&1; then return 0; fi
      sleep 0.5
    done
    _dft_log "$what did not become ready in 30s"
    return 1
  }

  _dft_tcp() { # host port: does something accept connections there?
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
  }

  # ---- Redis ----------------------------------------------------------
  if [ -z "${DRIPFLOW_TEST_REDIS_URL:-}" ]; then
    export DRIPFLOW_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
    if ! (command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG); then
      command -v redis-server >/dev/null 2>&1 || _dft_install redis-server redis-tools || true
      if command -v redis-server >/dev/null 2>&1; then
        _dft_log "starting Redis"
        $sudo mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
        $sudo redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
          --dir /var/lib/redis --logfile /var/log/redis/dripflow-test.log >&2 || true
        _dft_wait Redis redis-cli -h 127.0.0.1 -p 6379 ping || true
      fi
    fi
  fi

  # ---- Redis Sentinel and Cluster (binaries only) ----------------------
  # The Sentinel failover and Cluster tests (internal/e2e) start their own
  # primaries, replicas, sentinels and cluster nodes on free ports: only the
  # programs are needed here, nothing is started.
  if ! command -v redis-sentinel >/dev/null 2>&1; then
    _dft_install redis-sentinel || true
  fi
  command -v redis-cli >/dev/null 2>&1 || _dft_install redis-tools || true

  # ---- PostgreSQL -----------------------------------------------------
  if [ -z "${DRIPFLOW_TEST_POSTGRES_URL:-}" ]; then
    export DRIPFLOW_TEST_POSTGRES_URL="postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable"
    if ! (command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432); then
      command -v pg_ctlcluster >/dev/null 2>&1 || _dft_install postgresql postgresql-client || true
      if command -v pg_ctlcluster >/dev/null 2>&1; then
        local ver
        ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
        if [ -n "$ver" ]; then
          _dft_log "starting PostgreSQL $ver"
          $sudo pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || true
          _dft_wait PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432 || true
        fi
      fi
    fi
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
      # A fresh Debian cluster wants a password over TCP: give the postgres
      # role the one in the URL (trust-auth machines ignore it).
      if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
        _dft_log "setting the postgres role's password for TCP access"
        $sudo su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >&2 || true
      fi
      if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atqc "select 1 from pg_database where datname='test'" 2>/dev/null | grep -q 1; then
        PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' >&2 || true
      fi
    fi
  fi

  # ---- MariaDB --------------------------------------------------------
  if [ -z "${DRIPFLOW_TEST_MYSQL_URL:-}" ]; then
    export DRIPFLOW_TEST_MYSQL_URL="mysql://root@127.0.0.1:3306/test"
    if ! (command -v mysqladmin >/dev/null && mysqladmin -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1); then
      command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || _dft_install mariadb-server mariadb-client || true
      if [ -x /usr/sbin/mariadbd ]; then
        _dft_log "starting MariaDB"
        $sudo mkdir -p /run/mysqld && $sudo chown mysql:mysql /run/mysqld 2>/dev/null || true
        $sudo start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >&2 || true
        _dft_wait MariaDB mysqladmin --protocol=socket -uroot ping || true
        # A fresh install lets root in only through the socket: allow the
        # empty password over TCP too, as the URL says.
        if ! mysql -h 127.0.0.1 -P 3306 -uroot -e 'select 1' >/dev/null 2>&1; then
          _dft_log "allowing root over TCP for tests"
          $sudo mysql --protocol=socket -uroot -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" >&2 || true
        fi
      fi
    fi
    mysql -h 127.0.0.1 -P 3306 -uroot -e 'CREATE DATABASE IF NOT EXISTS test' >/dev/null 2>&1 || true
  fi

  # ---- NATS (JetStream) -----------------------------------------------
  if [ -z "${DRIPFLOW_TEST_NATS_URL:-}" ]; then
    export DRIPFLOW_TEST_NATS_URL="nats://127.0.0.1:4222"
    if ! _dft_tcp 127.0.0.1 4222; then
      [ -x /usr/sbin/nats-server ] || _dft_install nats-server || true
      if [ -x /usr/sbin/nats-server ]; then
        _dft_log "starting NATS with JetStream"
        $sudo mkdir -p /var/lib/nats-server 2>/dev/null || true
        $sudo start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
          -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log >&2 || true
        _dft_wait NATS _dft_tcp 127.0.0.1 4222 || true
      fi
    fi
  fi

  # ---- RabbitMQ -------------------------------------------------------
  if [ -z "${DRIPFLOW_TEST_AMQP_URL:-}" ]; then
    export DRIPFLOW_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/"
    if ! _dft_tcp 127.0.0.1 5672; then
      [ -x /usr/sbin/rabbitmq-server ] || _dft_install rabbitmq-server || true
      if [ -x /usr/sbin/rabbitmq-server ]; then
        _dft_log "starting RabbitMQ"
        $sudo rabbitmq-server -detached >&2 || true
        # RabbitMQ takes a while to boot: wait up to a minute.
        _dft_wait RabbitMQ _dft_tcp 127.0.0.1 5672 || _dft_wait RabbitMQ _dft_tcp 127.0.0.1 5672 || true
      fi
    fi
  fi

  # ---- Chromium (browser tests) --------------------------------------
  if [ -z "${DRIPFLOW_TEST_CHROMIUM:-}" ]; then
    export DRIPFLOW_TEST_CHROMIUM="/usr/bin/chromium"
    if [ ! -x "$DRIPFLOW_TEST_CHROMIUM" ]; then
      _dft_install chromium || true
    fi
  fi

  _dft_url_tcp() { # url default-port: the host and port of a scheme://[user@]host[:port]/… URL
    local hostport=${1#*://}
    hostport=${hostport#*@}
    hostport=${hostport%%/*}
    local host=${hostport%:*} port=${hostport##*:}
    [ "$host" = "$hostport" ] && port=$2
    _dft_tcp "$host" "$port"
  }

  # ---- report ---------------------------------------------------------
  local ok=1
  redis-cli -u "$DRIPFLOW_TEST_REDIS_URL" ping >/dev/null 2>&1 || { _dft_log "Redis NOT reachable at $DRIPFLOW_TEST_REDIS_URL"; ok=0; }
  psql "$DRIPFLOW_TEST_POSTGRES_URL" -Atqc 'select 1' >/dev/null 2>&1 || { _dft_log "PostgreSQL NOT reachable at $DRIPFLOW_TEST_POSTGRES_URL"; ok=0; }
  mysqladmin -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1 || { _dft_log "MariaDB NOT reachable at $DRIPFLOW_TEST_MYSQL_URL"; ok=0; }
  _dft_url_tcp "$DRIPFLOW_TEST_NATS_URL" 4222 || { _dft_log "NATS NOT reachable at $DRIPFLOW_TEST_NATS_URL"; ok=0; }
  _dft_url_tcp "$DRIPFLOW_TEST_AMQP_URL" 5672 || { _dft_log "RabbitMQ NOT reachable at $DRIPFLOW_TEST_AMQP_URL"; ok=0; }
  command -v redis-sentinel >/dev/null 2>&1 || { _dft_log "redis-sentinel NOT found (the Sentinel failover test skips, or fails with CI=true)"; ok=0; }
  [ -x "$DRIPFLOW_TEST_CHROMIUM" ] || { _dft_log "chromium NOT found at $DRIPFLOW_TEST_CHROMIUM (browser tests skip, or fail with CI=true)"; ok=0; }
  [ "$ok" = 1 ] && _dft_log "Redis, PostgreSQL, MariaDB, NATS, RabbitMQ and chromium are ready"
  unset -f _dft_log _dft_install _dft_wait _dft_tcp _dft_url_tcp
  return 0
}

_dft_main
unset -f _dft_main
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "export DRIPFLOW_TEST_REDIS_URL='$DRIPFLOW_TEST_REDIS_URL'"
  echo "export DRIPFLOW_TEST_POSTGRES_URL='$DRIPFLOW_TEST_POSTGRES_URL'"
  echo "export DRIPFLOW_TEST_MYSQL_URL='$DRIPFLOW_TEST_MYSQL_URL'"
  echo "export DRIPFLOW_TEST_NATS_URL='$DRIPFLOW_TEST_NATS_URL'"
  echo "export DRIPFLOW_TEST_AMQP_URL='$DRIPFLOW_TEST_AMQP_URL'"
  echo "export DRIPFLOW_TEST_CHROMIUM='$DRIPFLOW_TEST_CHROMIUM'"
fi
