#!/bin/sh
# As the official image does: accept connections from other containers (Debian's build
# has protected mode on and no config file is passed), keep data in /data, run as redis.
set -e
if [ "$1" = "redis-server" ]; then
    shift
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups \
        redis-server --protected-mode no --bind 0.0.0.0 --dir /data "$@"
fi
exec "$@"
