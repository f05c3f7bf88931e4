#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine. CI machines start with only the docker
# client, so install Debian's engine and start it in the background when nothing answers.
# Idempotent: does nothing when `docker info` already works.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "engine.sh: no Docker engine answers and installing one needs root" >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "engine.sh: installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi

log=/var/log/torchswarm-dockerd.log
echo "engine.sh: starting dockerd (log: $log)"
# In a session of its own: a timed target stopped with its process group (make test) leaves it.
nohup setsid dockerd >"$log" 2>&1 &

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "engine.sh: engine is up"
    exit 0
  fi
  sleep 1
done
echo "engine.sh: dockerd did not answer within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
