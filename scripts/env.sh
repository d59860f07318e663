# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: makes a checkout ready to run on a fresh Linux machine
# with only Python installed — a virtualenv with ringsync installed, a Redis and a PostgreSQL.
#
# Uses Redis on 127.0.0.1:6379 and PostgreSQL at postgresql://postgres@127.0.0.1:5432/test when
# they answer; otherwise starts private ones (installing the OS packages when running as root).
# Exports REDIS_URL, and with RINGSYNC_SETUP=test (scripts/test) also RINGSYNC_TEST_POSTGRES_URL
# (empty when no PostgreSQL could be had), the compose tool the deployment test uses and the
# headless Chromium (+ its chromedriver) the console's browser tests drive.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STATE="$ROOT/.services"
mkdir -p "$STATE"

say() { echo "[setup] $*" >&2; }

# --- Python -------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv in .venv"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$want" ]; then
  say "installing ringsync and its dev tools into .venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]"
  echo "$want" >"$VENV/.installed"
fi

# --- helpers --------------------------------------------------------------------------------
redis_answers() { # port
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'PING\r\n' >&3 && read -r l <&3 && [[ \$l == +PONG* ]]" 2>/dev/null
}
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $* from the OS packages"
    if [ ! -f "$STATE/.apt-updated" ]; then apt-get update -qq >&2 && touch "$STATE/.apt-updated"; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  else
    return 1
  fi
}

# --- Redis ----------------------------------------------------------------------------------
if [ -z "${REDIS_URL:-}" ]; then
  if redis_answers 6379; then
    export REDIS_URL="redis://127.0.0.1:6379/0"
  else
    port=6391
    if ! redis_answers "$port"; then
      command -v redis-server >/dev/null || apt_install redis-server || true
      if command -v redis-server >/dev/null; then
        say "starting a private redis-server on 127.0.0.1:$port"
        mkdir -p "$STATE/redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$STATE/redis" \
          --appendonly yes --save "" --logfile "$STATE/redis/redis.log" >&2
        for _ in $(seq 50); do redis_answers "$port" && break; sleep 0.1; done
      fi
    fi
    redis_answers "$port" || { say "no Redis could be had"; return 1 2>/dev/null || exit 1; }
    export REDIS_URL="redis://127.0.0.1:$port/0"
  fi
fi

# --- PostgreSQL (tests only: the demo runs on SQLite) -----------------------------------------
if [ "${RINGSYNC_SETUP:-}" = "test" ] && [ -z "${RINGSYNC_TEST_POSTGRES_URL+set}" ]; then
  if port_open 5432; then
    export RINGSYNC_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/test"
  else
    port=5439
    if ! port_open "$port"; then
      command -v pg_ctlcluster >/dev/null || apt_install postgresql || true
      if command -v pg_ctlcluster >/dev/null; then
        ver="$(ls /usr/lib/postgresql | sort -n | tail -n1)"
        if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$ver ringsync"; then
          say "creating a private PostgreSQL $ver cluster on 127.0.0.1:$port"
          pg_createcluster -p "$port" "$ver" ringsync -- --auth=trust >&2
        fi
        say "starting the private PostgreSQL cluster"
        pg_ctlcluster --skip-systemctl-redirect "$ver" ringsync start >&2 || true
        for _ in $(seq 100); do port_open "$port" && break; sleep 0.1; done
        if port_open "$port"; then
          runuser -u postgres -- psql -h 127.0.0.1 -p "$port" -tAc \
            "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 ||
            runuser -u postgres -- createdb -h 127.0.0.1 -p "$port" test >&2
        fi
      fi
    fi
    if port_open "$port"; then
      export RINGSYNC_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/test"
    else
      say "WARNING: no PostgreSQL could be had; PostgreSQL tests will be skipped"
      export RINGSYNC_TEST_POSTGRES_URL=""
    fi
  fi
fi

# --- docker compose (the tests only validate docker-compose.yml; nothing is started) ---------
if [ "${RINGSYNC_SETUP:-}" = "test" ] && ! docker compose version >/dev/null 2>&1 &&
  ! command -v docker-compose >/dev/null; then
  apt_install docker-compose ||
    say "WARNING: no docker compose or docker-compose; the compose file test will be skipped"
fi

# --- Chromium (the console's browser tests drive the system browser, never a downloaded one) ---
if [ "${RINGSYNC_SETUP:-}" = "test" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
  apt_install chromium chromium-driver ||
    say "WARNING: no /usr/bin/chromium and /usr/bin/chromedriver (install the chromium and chromium-driver packages as root); the browser tests will be skipped"
fi
