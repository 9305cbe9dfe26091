#!/usr/bin/env bash
# Start what the test suite talks to, if it is not running: PostgreSQL and Redis (scale-out
# tests) and Debian's Chromium (console tests). Installs Debian packages when they are missing.
set -u
need_update=1
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "services.sh: not root, cannot install $*" >&2; return 1; fi
  if [ $need_update = 1 ]; then apt-get update -qq >/dev/null && need_update=0; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then apt_install postgresql; fi
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

if ! command -v redis-server >/dev/null 2>&1; then apt_install redis-server; fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi

if ! command -v chromium >/dev/null 2>&1; then apt_install chromium || true; fi

for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0
  sleep 0.2
done
echo "services.sh: PostgreSQL or Redis is not answering; scale-out tests will fail" >&2
exit 0
