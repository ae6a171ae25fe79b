#!/usr/bin/env bash
# Installs the system commands the test suite needs, on Debian/Ubuntu, as root.
# Idempotent and silent when everything is already present (the common case: it runs before every
# `npm test`). Does NOT run `npm ci` (the README's test command does that).
#
# To require another command, add a "command:debian-package" line to REQUIRED below.
set -euo pipefail

REQUIRED=(
  "redis-server:redis-server"
  "haproxy:haproxy"
  "docker-compose:docker-compose"
  "chromium:chromium"
  "python3:python3"
)
# Python modules the tests import (an independent implementation of the share-token format):
# "module:debian-package".
REQUIRED_PY=(
  "cryptography:python3-cryptography"
)

missing_cmds=()
missing_pkgs=()
for entry in "${REQUIRED[@]}"; do
  cmd="${entry%%:*}"
  pkg="${entry#*:}"
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing_cmds+=("$cmd")
    # One package may provide several commands: list it once.
    case " ${missing_pkgs[*]-} " in *" $pkg "*) ;; *) missing_pkgs+=("$pkg") ;; esac
  fi
done

missing_mods=()
for entry in "${REQUIRED_PY[@]}"; do
  mod="${entry%%:*}"
  pkg="${entry#*:}"
  # without python3 the module is missing too (its package pulls python3 in)
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import $mod" >/dev/null 2>&1; then
    missing_mods+=("$mod")
    missing_pkgs+=("$pkg")
  fi
done

if [ "${#missing_cmds[@]}" -eq 0 ] && [ "${#missing_mods[@]}" -eq 0 ]; then
  exit 0
fi

echo "install-test-deps: missing command(s): ${missing_cmds[*]-} python module(s): ${missing_mods[*]-}" >&2

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: cannot install them automatically (this needs root and apt-get)." >&2
  echo "install-test-deps: install these Debian packages, then rerun the tests:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing_pkgs[*]}" >&2
  exit 1
fi

echo "install-test-deps: apt-get install ${missing_pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null

still_missing=()
for cmd in "${missing_cmds[@]+"${missing_cmds[@]}"}"; do
  command -v "$cmd" >/dev/null 2>&1 || still_missing+=("$cmd")
done
if [ "${#still_missing[@]}" -ne 0 ]; then
  echo "install-test-deps: still not on PATH after installing: ${still_missing[*]} (PATH=$PATH;" \
    "sbin directories such as /usr/sbin must be on it)" >&2
  exit 1
fi
echo "install-test-deps: done" >&2
