#!/bin/sh
# As valkey/valkey's entry point: a first argument that is a .conf file, or an
# option, runs valkey-server with it.
set -e
case "$1" in
  *.conf|-*) set -- valkey-server "$@" ;;
esac
exec "$@"
