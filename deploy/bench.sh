#!/usr/bin/env bash
# The Eye's benchmark on this machine.
#
#   ./deploy/bench.sh [eye-bench options]
#
# Builds the release binaries, starts the whole stack exactly as
# `./deploy/local.sh up` does (same script, same binaries, same defaults) in a
# temporary EYE_HOME on free loopback ports, runs eye-bench against it, prints
# the table, writes bench/results.json, and stops everything (SIGTERM, then a
# check that nothing it started is left). The run after the build takes about
# five minutes and is bounded: eye-bench stops at BENCH_TIMEOUT_SECS whatever
# happens, and every load loop in it is bounded in count and in time.
#
# Options after the script name go to eye-bench (`--scale smoke` for a quick
# look, `--scenarios batched,single`, `--batch-concurrency 64`, ...; see
# `target/release/eye-bench --help`).
#
# Variables: EYE_BENCH_KEEP=1 keeps the temporary EYE_HOME (data and logs);
# EYE_BENCH_RESULTS (bench/results.json) is where the results go; the
# EYE_* variables of the binaries pass through as for local.sh.

set -euo pipefail

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# local.sh's functions (sourcing defines them and runs nothing).
# shellcheck source=deploy/local.sh
. "$BENCH_ROOT/deploy/local.sh"
cd "$BENCH_ROOT"

readonly BENCH="deploy/bench.sh"
readonly BENCH_TIMEOUT_SECS=540
readonly STACK_START_SECS=300
readonly STACK_STOP_SECS=60
readonly RESULTS=${EYE_BENCH_RESULTS:-$BENCH_ROOT/bench/results.json}

note() { printf '%s: %s\n' "$BENCH" "$*"; }
fail() {
    printf '%s: error: %s\n' "$BENCH" "$*" >&2
    exit 1
}

UP_PID=""
CEILING_PID=""
BENCH_HOME=""
declare -A STACK_PIDS=()

# Prints a free loopback port at or above $1, not in the list $2.
free_port() {
    local port=$1 taken=$2
    while ((port < 65000)); do
        if [[ " $taken " != *" $port "* ]] && ! port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
        port=$((port + 1))
    done
    return 1
}

# Every EYE_*_PORT of local.sh on a free port from a random base, so a bench
# never collides with a stack on the default ports or with another bench.
choose_ports() {
    local entry var taken="" port=$((20000 + RANDOM % 20000))
    for entry in "${PORTS[@]}"; do
        read -r var _ <<<"$entry"
        port=$(free_port "$port" "$taken") || fail "no free port for $var"
        export "$var=$port"
        taken+=" $port"
        port=$((port + 1))
    done
    CEILING_NATS_PORT=$(free_port "$port" "$taken") || fail "no free port for the ceiling's nats-server"
}

# The stack's processes, from the pid files local.sh writes ("pid program").
read_stack_pids() {
    local name pid
    for name in nats clickhouse consumer gateway query; do
        [[ -f $BENCH_HOME/run/$name.pid ]] || return 1
        read -r pid _ <"$BENCH_HOME/run/$name.pid" || return 1
        STACK_PIDS[$name]=$pid
    done
}

# A nats-server of its own for the JetStream ceiling: the stack's server
# admits only the services' users, whose permissions cover the EYE_* streams
# alone, and the ceiling must not write into EYE_EVENTS. Same binary, same
# disk, no other load; the stream settings are EYE_EVENTS's.
start_ceiling_nats() {
    local bin dir="$BENCH_HOME/nats-ceiling"
    bin=$(locate_program nats-server EYE_NATS_SERVER_BIN) || fail "nats-server not found"
    mkdir -p "$dir"
    cat >"$dir/nats.conf" <<EOF
host: 127.0.0.1
port: $CEILING_NATS_PORT
jetstream { store_dir: "$dir" }
EOF
    "$bin" --config "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
    CEILING_PID=$!
    local deadline=$(($(now_ms) + 30000))
    until port_in_use "$CEILING_NATS_PORT"; do
        is_running "$CEILING_PID" || fail "the ceiling's nats-server exited: $(tail -n 5 "$dir/nats.log")"
        (($(now_ms) < deadline)) || fail "the ceiling's nats-server did not listen within 30 s"
        sleep 0.1
    done
}

# SIGTERM to `local.sh up` (which stops its parts in order), then checks that
# every process of the stack is gone; kills stragglers by pid.
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [[ -n $CEILING_PID ]] && is_running "$CEILING_PID"; then
        kill -TERM "$CEILING_PID" 2>/dev/null || true
        wait "$CEILING_PID" 2>/dev/null || true
    fi
    if [[ -n $UP_PID ]] && is_running "$UP_PID"; then
        note "stopping the stack"
        kill -TERM "$UP_PID" 2>/dev/null || true
        local deadline=$(($(now_ms) + STACK_STOP_SECS * 1000))
        while is_running "$UP_PID" && (($(now_ms) < deadline)); do sleep 0.2; done
        if is_running "$UP_PID"; then
            printf '%s: warning: local.sh up did not stop within %s s\n' "$BENCH" "$STACK_STOP_SECS" >&2
            kill -KILL "$UP_PID" 2>/dev/null || true
        fi
        wait "$UP_PID" 2>/dev/null || true
    fi
    local name left=()
    for name in "${!STACK_PIDS[@]}"; do
        if is_running "${STACK_PIDS[$name]}"; then
            left+=("$name")
            kill -KILL "${STACK_PIDS[$name]}" 2>/dev/null || true
        fi
    done
    if ((${#left[@]} > 0)); then
        printf '%s: warning: still running after the stop, killed: %s\n' "$BENCH" "${left[*]}" >&2
        status=1
    elif ((${#STACK_PIDS[@]} > 0)); then
        note "stack stopped; none of its processes is left"
    fi
    if [[ -n $BENCH_HOME ]]; then
        if [[ ${EYE_BENCH_KEEP:-0} == 1 ]]; then
            note "data and logs kept in $BENCH_HOME"
        elif [[ $status != 0 ]]; then
            # The logs tell what went wrong; the data (gigabytes) does not.
            rm -rf "$BENCH_HOME/nats" "$BENCH_HOME/nats-ceiling" "$BENCH_HOME/clickhouse/data"
            note "logs kept in $BENCH_HOME (EYE_BENCH_KEEP=1 keeps the data too)"
        else
            rm -rf "$BENCH_HOME"
        fi
    fi
    exit "$status"
}

main() {
    require_cargo
    ensure_servers
    note "building (release)"
    cargo build --release --locked --bin eye-bench
    build_services

    BENCH_HOME=$(mktemp -d "${TMPDIR:-/tmp}/eye-bench.XXXXXX")
    export EYE_HOME=$BENCH_HOME
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    choose_ports
    # local.sh's; here rather than in up so the note is in this output. The
    # limit is not consulted per message, so a lower one changes nothing
    # measured (the consumer trims the stream once events are stored).
    fit_streams_to_disk "$BENCH_HOME"

    note "starting the stack (deploy/local.sh up) in $BENCH_HOME, gateway on port $EYE_GATEWAY_PORT"
    "$BENCH_ROOT/deploy/local.sh" up >"$BENCH_HOME/up.log" 2>&1 &
    UP_PID=$!
    local deadline=$(($(now_ms) + STACK_START_SECS * 1000))
    until grep -q "The Eye is running" "$BENCH_HOME/up.log" 2>/dev/null; do
        if ! is_running "$UP_PID"; then
            tail -n 40 "$BENCH_HOME/up.log" >&2 || true
            fail "deploy/local.sh up stopped before the stack was ready"
        fi
        (($(now_ms) < deadline)) || fail "the stack was not ready within $STACK_START_SECS s (see $BENCH_HOME/up.log)"
        sleep 0.2
    done
    read_stack_pids || fail "cannot read the stack's pid files in $BENCH_HOME/run"
    start_ceiling_nats

    local commit
    commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
        commit+="+uncommitted"
    fi
    note "running eye-bench (at most $BENCH_TIMEOUT_SECS s)"
    local status=0
    timeout --signal=TERM --kill-after=10 "$BENCH_TIMEOUT_SECS" \
        "$BIN_DIR/eye-bench" \
        --gateway-url "http://127.0.0.1:$EYE_GATEWAY_PORT" \
        --query-url "http://127.0.0.1:$EYE_QUERY_PORT" \
        --consumer-url "http://127.0.0.1:$EYE_CONSUMER_PORT" \
        --nats-url "nats://127.0.0.1:$CEILING_NATS_PORT" \
        --clickhouse-url "http://127.0.0.1:$EYE_CLICKHOUSE_HTTP_PORT" \
        --clickhouse-database "${EYE_CLICKHOUSE_DATABASE:-eye}" \
        --client-id "$DEMO_CLIENT" \
        --write-key "$DEMO_WRITE_KEY" \
        --read-token "$DEMO_READ_TOKEN" \
        --pid "gateway=${STACK_PIDS[gateway]}" \
        --pid "consumer=${STACK_PIDS[consumer]}" \
        --pid "query=${STACK_PIDS[query]}" \
        --pid "nats=${STACK_PIDS[nats]}" \
        --pid "clickhouse=${STACK_PIDS[clickhouse]}" \
        --clk-tck "$(getconf CLK_TCK)" \
        --git-commit "$commit" \
        --out "$RESULTS" \
        "$@" || status=$?
    if ((status == 124)); then
        fail "eye-bench did not finish within $BENCH_TIMEOUT_SECS s"
    fi
    if ((status != 0)); then
        fail "eye-bench reported problems (exit $status); see above"
    fi
    note "results in ${RESULTS#"$BENCH_ROOT"/}"
}

main "$@"
