#!/usr/bin/env bash
# Creates the virtual environment and installs camactor with its test extras.
# Usage: scripts/bootstrap.sh VENV_DIR
set -euo pipefail
venv=${1:-.venv}

pick_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

if ! py=$(pick_python); then
  echo "camactor needs Python >= 3.11. On Debian 12: apt-get install -y python3 python3-venv" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  if ! "$py" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing python3-venv (Debian package) ..."
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$py" -m venv "$venv"
    else
      echo "Cannot create a virtual environment. On Debian run: sudo apt-get install -y python3-venv" >&2
      exit 1
    fi
  fi
fi

"$venv/bin/python" -m pip install -q --upgrade pip "setuptools>=77" wheel
"$venv/bin/python" -m pip install -q -e '.[test]'
