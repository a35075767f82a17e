#!/usr/bin/env bash
# Makes sure the third-party device servers used by the backend tests exist:
# indiserver + indi_simulator_ccd (Debian package indi-bin). The Alpaca
# simulator is a Python package installed with the test extras.
set -uo pipefail

if command -v indiserver >/dev/null 2>&1 && command -v indi_simulator_ccd >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing indi-bin (Debian package) for the INDI backend tests ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq indi-bin >/dev/null
  command -v indiserver >/dev/null 2>&1 && exit 0
fi
echo "indiserver is missing and cannot be installed by this user." >&2
echo "Run: sudo apt-get install -y indi-bin   (the INDI backend tests need it)" >&2
exit 1
