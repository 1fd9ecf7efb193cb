#!/usr/bin/env bash
# Prepares this machine for cuttle: Debian packages (Docker engine, busybox-static for the demo
# image, git; docker-registry, apache2-utils and musl for the tests), a running Docker engine,
# npm dependencies and the build. Safe to run again: it only
# does what is missing, and says what it does.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

need_packages=()
command -v dockerd >/dev/null 2>&1 || need_packages+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need_packages+=(busybox-static)
command -v git >/dev/null 2>&1 || need_packages+=(git)
# For the tests: a private registry, its htpasswd, and musl to stand in for Alpine.
command -v docker-registry >/dev/null 2>&1 || need_packages+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_packages+=(apache2-utils)
dpkg -s musl >/dev/null 2>&1 || need_packages+=(musl)
if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${need_packages[*]}; run as root or install them with apt-get"
    exit 1
  fi
  say "installing Debian packages: ${need_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
fi

if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    say "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine, or unset DOCKER_HOST"
    exit 1
  fi
  say "no Docker engine is running: starting dockerd in the background (log: /var/log/cuttle-dockerd.log)"
  nohup dockerd >/var/log/cuttle-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    say "dockerd did not start within 60 s; see /var/log/cuttle-dockerd.log"
    tail -20 /var/log/cuttle-dockerd.log || true
    exit 1
  fi
fi
say "Docker engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
say "building"
npm run --silent build
