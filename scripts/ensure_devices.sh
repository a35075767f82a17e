#!/usr/bin/env bash
# Makes sure the third-party servers used by the tests exist:
# - indiserver + indi_simulator_ccd (Debian package indi-bin), for the INDI
#   backend tests;
# - RabbitMQ's own scripts (Debian package rabbitmq-server, which brings Erlang
#   and epmd), for the broker-restart tests: they start a private node, even
#   when the shared broker runs elsewhere.
# The Alpaca simulator is a Python package installed with the test extras.
set -uo pipefail

missing=()
if ! command -v indiserver >/dev/null 2>&1 || ! command -v indi_simulator_ccd >/dev/null 2>&1; then
  missing+=(indi-bin)
fi
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || ! command -v epmd >/dev/null 2>&1; then
  missing+=(rabbitmq-server)
fi
if [ ${#missing[@]} = 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} (Debian packages) for the tests ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  if command -v indiserver >/dev/null 2>&1 && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    exit 0
  fi
fi
echo "${missing[*]} missing and cannot be installed by this user." >&2
echo "Run: sudo apt-get install -y ${missing[*]}   (the INDI and broker-restart tests need them)" >&2
exit 1
