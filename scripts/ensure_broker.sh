#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers on 127.0.0.1:5672: starts it, or installs
# and starts it where this user can, otherwise says exactly what to do.
set -uo pipefail
host=${CAMACTOR_BROKER_HOST:-127.0.0.1}
port=${CAMACTOR_BROKER_PORT:-5672}

reachable() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

wait_ready() {
  for _ in $(seq 1 60); do
    reachable && return 0
    sleep 0.5
  done
  return 1
}

if reachable; then
  exit 0
fi

if [ "$host" != 127.0.0.1 ] && [ "$host" != localhost ]; then
  echo "RabbitMQ is not reachable at $host:$port. Start it there, or set CAMACTOR_BROKER_HOST." >&2
  exit 1
fi

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing rabbitmq-server (Debian package) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  else
    echo "RabbitMQ is not installed and this user cannot install it." >&2
    echo "Run: sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached" >&2
    exit 1
  fi
fi

echo "Starting RabbitMQ (rabbitmq-server -detached) ..."
rabbitmq-server -detached >/dev/null 2>&1 || true
if wait_ready; then
  echo "RabbitMQ is up on $host:$port."
  exit 0
fi
echo "RabbitMQ did not come up on $host:$port within 30 s." >&2
echo "Check 'rabbitmqctl status' and the logs in /var/log/rabbitmq/." >&2
exit 1
