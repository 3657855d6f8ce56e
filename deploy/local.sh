#!/usr/bin/env bash
# The Eye on this machine, without Docker.
#
#   ./deploy/local.sh up     install NATS and ClickHouse if missing, build, run the
#                            whole stack on loopback in the foreground until Ctrl-C
#   ./deploy/local.sh test   install what is missing, run every test of the workspace
#
# Works from any directory. `./deploy/local.sh help` lists the variables it reads.
# Debian/Ubuntu (apt) and Linux only: it installs Debian packages and watches its
# processes through /proc.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly CALLER_DIR="$PWD"
cd "$REPO_ROOT"

readonly PROG="deploy/local.sh"

# Ports, with the defaults of DESIGN.md ("Ports and the demo client"). Each pair is
# "VARIABLE default"; `up` refuses to start when one of them is taken.
readonly PORTS=(
    "EYE_GATEWAY_PORT 8080"
    "EYE_QUERY_PORT 8081"
    "EYE_CONSUMER_PORT 8082"
    "EYE_NATS_PORT 4222"
    "EYE_NATS_MONITOR_PORT 8222"
    "EYE_CLICKHOUSE_HTTP_PORT 8123"
    "EYE_CLICKHOUSE_TCP_PORT 9000"
)

# The demo client (DESIGN.md). For local use only: printed, never deployed.
readonly DEMO_CLIENT="demo"
readonly DEMO_WRITE_KEY="eye_demo_write_key"
readonly DEMO_SECRET="eye_demo_secret"
readonly DEMO_READ_TOKEN="eye_demo_read_token"

# NATS users of deploy/nats/auth.conf and the local-only defaults of their
# passwords (each can be changed with its variable; see usage).
readonly NATS_GATEWAY_USER="eye_gateway"
readonly NATS_CONSUMER_USER="eye_consumer"
readonly NATS_DEMO_USER="$DEMO_CLIENT"

# How long each part may take to become ready, and to stop after SIGTERM.
readonly NATS_START_SECS=30
readonly CLICKHOUSE_START_SECS=60
readonly SERVICE_START_SECS=60
readonly STOP_GRACE_SECS=10
# The streams' default byte limits together (see fit_streams_to_disk), and the
# free space below which up refuses to start.
readonly DEFAULT_STREAMS_BYTES=$((8 * 1024 * 1024 * 1024 * 12 / 10))
readonly MIN_FREE_MIB=512

usage() {
    cat <<EOF
Usage: $PROG <command> [arguments]

Commands:
  up            Install nats-server and clickhouse-server (Debian packages) if
                missing, build the release binaries, and run NATS, ClickHouse,
                eye-consumer, eye-gateway and eye-query on 127.0.0.1 in the
                foreground. Ctrl-C or SIGTERM stops everything it started;
                so does any of them dying.
  test [ARGS]   Install what is missing, then run every test suite:
                cargo test --workspace --locked, except the fault suite (ARGS
                go to cargo test); cargo doc of the client crate with
                warnings as errors; deploy/chdb_check.py, which runs every
                migration and every query on current ClickHouse (chdb-core,
                pip-installed into target/chdb-venv on first use); and the
                fault suite (fault-suite/: the release binaries under load,
                one fault per scenario; builds them, about five minutes).
  help          This text.

Variables (defaults in brackets):
  EYE_HOME                  data and logs of 'up' [<repo>/var]; a relative path
                            is relative to the current directory
  EYE_GATEWAY_PORT          ingest gateway [8080]
  EYE_QUERY_PORT            query service [8081]
  EYE_CONSUMER_PORT         consumer health and metrics [8082]
  EYE_NATS_PORT             NATS clients [4222]
  EYE_NATS_MONITOR_PORT     NATS monitoring [8222]
  EYE_CLICKHOUSE_HTTP_PORT  ClickHouse HTTP [8123]
  EYE_CLICKHOUSE_TCP_PORT   ClickHouse native protocol [9000]
  EYE_CLICKHOUSE_DATABASE   database of the Eye's tables [eye]
  EYE_CLICKHOUSE_READER_PASSWORD
                            password of the read-only ClickHouse user eye_reader
                            that the query service uses [eye_reader_local_password]
  EYE_NATS_GATEWAY_PASSWORD, EYE_NATS_CONSUMER_PASSWORD, EYE_NATS_DEMO_PASSWORD
                            passwords of the NATS users eye_gateway, eye_consumer
                            and demo (deploy/nats/auth.conf) [eye_gateway_local_password,
                            eye_consumer_local_password, eye_demo_nats_password]
  EYE_NATS_SERVER_BIN, EYE_CLICKHOUSE_SERVER_BIN
                            explicit server binaries (as for the tests)
  RUST_LOG, EYE_LOG_FORMAT and the other EYE_* options of the binaries pass
  through to them (see each binary's --help).
EOF
}

# ---------------------------------------------------------------------------
# Messages

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------
# Prerequisites

# Finds cargo, also when rustup installed it but the shell's PATH lacks ~/.cargo/bin.
require_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
        export PATH
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found. Install Rust with rustup:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
  then open a new shell (or run: . \"\$HOME/.cargo/env\") and try again.
  (Debian's own cargo package is older than this workspace's rust-version.)"
}

# Prints the path of server program $1 (explicit override in variable $2, else
# PATH, else the directories Debian installs servers into, which are often not on
# a non-root user's PATH); returns 1 when there is none. Same order as the tests'
# harness (testkit/src/binary.rs).
locate_program() {
    local name=$1 override_var=$2 dir
    local override=${!override_var:-}
    if [[ -n $override ]]; then
        [[ -x $override ]] || die "$override_var=$override is not an executable file"
        printf '%s\n' "$override"
        return 0
    fi
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    for dir in /usr/sbin /usr/bin /usr/local/bin; do
        if [[ -x $dir/$name ]]; then
            printf '%s\n' "$dir/$name"
            return 0
        fi
    done
    return 1
}

# Installs the Debian packages of the servers that are missing. Packages whose
# service the package itself starts are stopped and disabled again: the stack runs
# its own servers, and a system ClickHouse on 8123/9000 would take the stack's ports.
# Arguments name more programs of the same Debian name to install when missing
# (`test` adds chromium, which the session explorer's browser test drives;
# EYE_CHROMIUM_BIN overrides it).
ensure_servers() {
    local missing=() extra
    locate_program nats-server EYE_NATS_SERVER_BIN >/dev/null || missing+=(nats-server)
    locate_program clickhouse-server EYE_CLICKHOUSE_SERVER_BIN >/dev/null || missing+=(clickhouse-server)
    locate_program clickhouse-client EYE_CLICKHOUSE_CLIENT_BIN >/dev/null || missing+=(clickhouse-client)
    for extra in "$@"; do
        locate_program "$extra" "EYE_${extra^^}_BIN" >/dev/null || missing+=("$extra")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi

    say "installing ${missing[*]} (Debian packages)"
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found: install ${missing[*]} yourself (or set EYE_NATS_SERVER_BIN / EYE_CLICKHOUSE_SERVER_BIN)"
    local as_root=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "installing ${missing[*]} needs root, and sudo is not installed"
        as_root=(sudo)
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        die "apt-get update failed"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
        die "could not install ${missing[*]} from the OS packages. Install them another way
  (https://docs.nats.io/running-a-nats-service/introduction/installation,
  https://clickhouse.com/docs/install) and, if they are not on PATH, set
  EYE_NATS_SERVER_BIN / EYE_CLICKHOUSE_SERVER_BIN."

    local package
    for package in "${missing[@]}"; do
        case $package in
            nats-server | clickhouse-server) stop_system_service "$package" "${as_root[@]}" ;;
        esac
    done
    locate_program nats-server EYE_NATS_SERVER_BIN >/dev/null || die "nats-server still not found after installing it"
    locate_program clickhouse-server EYE_CLICKHOUSE_SERVER_BIN >/dev/null || die "clickhouse-server still not found after installing it"
}

# Stops and disables the system service $1 that its package just started (if it did).
stop_system_service() {
    local service=$1
    shift
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet "$service" || systemctl is-enabled --quiet "$service" 2>/dev/null; then
            say "disabling the system $service service the package set up (the stack runs its own)"
            "$@" systemctl disable --now --quiet "$service" || warn "could not stop the system $service service"
        fi
    elif [[ -x /etc/init.d/$service ]] && command -v invoke-rc.d >/dev/null 2>&1; then
        "$@" invoke-rc.d "$service" stop >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------------------
# test

# Each suite is a function; `test` runs them all, even after a failure, and fails
# if any failed. Add later suites to this list.
readonly TEST_SUITES=(
    suite_rust
    suite_docs
    suite_chdb
    suite_faults
)

suite_rust() {
    # Not nextest: the integration tests share one server per test binary.
    # The fault suite has its own suite (release binaries, one test at a time).
    cargo test --workspace --exclude fault-suite --locked --no-fail-fast "$@"
}

# The client crate's API documentation builds without a warning (broken
# links, missing docs). Ignores ARGS (they are for suite_rust's cargo test).
suite_docs() {
    RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p eye-client
}

# The fault suite (fault-suite/): the whole stack as separate processes under
# load, one fault per scenario (kill -9, SIGTERM, NATS and ClickHouse restarts,
# a full stream, poison, resent requests), checked from the query service.
# About five minutes. Runs the release binaries, so it builds them first.
# Ignores ARGS (they are for suite_rust's cargo test).
suite_faults() {
    cargo build --release --locked --bin eye-gateway --bin eye-consumer --bin eye-query &&
        cargo test --release --locked -p fault-suite -- --test-threads=1 --nocapture
}

# The schema and every query on current ClickHouse (the tests run 18.16): the
# ClickHouse embedded in the chdb-core Python package (26.x), in a venv of its
# own so nothing is installed system-wide. Ignores ARGS (they are cargo's).
suite_chdb() {
    local venv="$REPO_ROOT/target/chdb-venv"
    command -v python3 >/dev/null || {
        say "python3 not found: install python3 and python3-venv (Debian) for the chdb check"
        return 1
    }
    if [[ ! -x $venv/bin/python ]]; then
        say "creating $venv for chdb-core"
        python3 -m venv "$venv" || {
            say "python3 -m venv failed: install python3-venv (Debian)"
            return 1
        }
    fi
    if ! "$venv/bin/python" -c 'import chdb' 2>/dev/null; then
        say "installing chdb-core (pip) into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check chdb-core || return 1
    fi
    "$venv/bin/python" "$REPO_ROOT/deploy/chdb_check.py"
}

cmd_test() {
    require_cargo
    ensure_servers chromium
    local suite failed=() started status
    for suite in "${TEST_SUITES[@]}"; do
        say "running test suite ${suite#suite_}"
        started=$(now_ms)
        status=0
        "$suite" "$@" || status=$?
        say "test suite ${suite#suite_}: $( ((status == 0)) && echo passed || echo "FAILED (exit $status)") in $((($(now_ms) - started) / 1000)) s"
        ((status == 0)) || failed+=("${suite#suite_}")
    done
    if ((${#failed[@]} > 0)); then
        die "failed test suites: ${failed[*]}"
    fi
    say "all test suites passed"
}

# ---------------------------------------------------------------------------
# up: configuration

# Ports come from the environment; each must be a port number, and all distinct.
read_ports() {
    local entry var default value seen=" "
    for entry in "${PORTS[@]}"; do
        read -r var default <<<"$entry"
        value=${!var:-$default}
        if [[ ! $value =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
            die "$var=$value is not a port number"
        fi
        [[ $seen != *" $value "* ]] || die "port $value is given to two parts; $var must differ"
        seen+="$value "
        printf -v "$var" '%s' "$value"
    done
}

resolve_home() {
    EYE_HOME=${EYE_HOME:-$REPO_ROOT/var}
    [[ $EYE_HOME == /* ]] || EYE_HOME="$CALLER_DIR/$EYE_HOME"
    # The path goes into XML and sed: keep it to characters that need no escaping.
    [[ $EYE_HOME != *[\<\>\&\"\'\|\\]* ]] || die "EYE_HOME=$EYE_HOME: please use a path without <>&\"'|\\"
    mkdir -p "$EYE_HOME"
    EYE_HOME=$(cd "$EYE_HOME" && pwd)
    LOG_DIR="$EYE_HOME/logs"
    RUN_DIR="$EYE_HOME/run"
    mkdir -p "$LOG_DIR" "$RUN_DIR" "$EYE_HOME/nats" "$EYE_HOME/clickhouse/data"
}

# The binaries go to cargo's target directory, which configuration may move.
build_services() {
    say "building eye-gateway, eye-consumer, eye-query (release)"
    cargo build --release --locked --bin eye-gateway --bin eye-consumer --bin eye-query
    local metadata target_dir
    metadata=$(cargo metadata --format-version 1 --no-deps --locked)
    target_dir=$(printf '%s' "$metadata" | grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d '"' -f 4)
    [[ -n $target_dir ]] || die "cannot find cargo's target directory in 'cargo metadata'"
    BIN_DIR="$target_dir/release"
    local bin
    for bin in eye-gateway eye-consumer eye-query; do
        [[ -x $BIN_DIR/$bin ]] || die "$BIN_DIR/$bin was not built"
    done
}

# sed replacement text: escape the delimiter, & and backslashes.
sed_escape() { printf '%s' "$1" | sed -e 's/[|&\\]/\\&/g'; }

# Writes template $1 to $2 with each NAME=value argument replacing @NAME@, and
# refuses a result that still has a placeholder (a template newer than this script).
render_template() {
    local template=$1 output=$2 pair
    shift 2
    [[ -f $template ]] || die "$template is missing"
    local expressions=()
    for pair in "$@"; do
        expressions+=(-e "s|@${pair%%=*}@|$(sed_escape "${pair#*=}")|g")
    done
    sed "${expressions[@]}" "$template" >"$output.tmp"
    local leftover
    leftover=$(grep -oE '@[A-Z][A-Z0-9_]*@' "$output.tmp" | sort -u | tr '\n' ' ' || true)
    if [[ -n $leftover ]]; then
        rm -f "$output.tmp"
        die "$template has placeholders $PROG does not fill: $leftover"
    fi
    mv "$output.tmp" "$output"
}

write_clickhouse_config() {
    local dir="$EYE_HOME/clickhouse"
    render_template deploy/clickhouse/config.xml "$dir/config.xml" \
        "LISTEN_HOST=127.0.0.1" \
        "HTTP_PORT=$EYE_CLICKHOUSE_HTTP_PORT" \
        "TCP_PORT=$EYE_CLICKHOUSE_TCP_PORT" \
        "DATA_DIR=$dir/data" \
        "LOG_DIR=$LOG_DIR"
    render_template deploy/clickhouse/users.xml "$dir/users.xml" \
        "DEFAULT_USER_NETWORK=127.0.0.1" \
        "READER_PASSWORD=$READER_PASSWORD"
}

# ---------------------------------------------------------------------------
# up: talking to the servers (bash's /dev/tcp: no curl needed)

# 0 when something accepts connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports_free() {
    local entry var port example=""
    for entry in "${PORTS[@]}"; do
        read -r var _ <<<"$entry"
        port=${!var}
        if port_in_use "$port"; then
            printf '%s: error: port %s (%s) is already in use\n' "$PROG" "$port" "$var" >&2
            [[ -n $example ]] || example="$var=$(((port + 10000) % 65536))"
        fi
    done
    [[ -z $example ]] || die "free the port(s) above or choose others, e.g. $example $PROG up"
}

# Sends an HTTP/1.0 request to 127.0.0.1:$2 and prints the status code, then the
# body. Fails when nothing answers within 5 s.
http_request() {
    local method=$1 port=$2 path=$3 body=${4:-}
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
            "$method" "$path" "$port" "${#body}" "$body" >&3
        local version status line
        IFS=' ' read -r -t 5 version status _ <&3 || exit 1
        [[ $version == HTTP/* ]] || exit 1
        printf '%s\n' "${status%$'\r'}"
        # Skip the headers, print the body (every read bounded by the timeout).
        while IFS= read -r -t 5 line <&3 && [[ ${line%$'\r'} != "" ]]; do :; done
        while IFS= read -r -t 5 line <&3; do printf '%s\n' "$line"; done
        printf '%s' "$line"
    ) 2>/dev/null
}

# 0 when GET 127.0.0.1:$1$2 answers 200.
http_ok() {
    local answer
    answer=$(http_request GET "$1" "$2") || return 1
    [[ ${answer%%$'\n'*} == 200 ]]
}

# ---------------------------------------------------------------------------
# up: processes

# Processes started by this run, in start order, with their pids and logs.
STARTED=()
declare -A PID=() LOG=()
STOPPING=0
FORCE_STOP=0
WATCHDOG_PID=""
SLEEP_PID=""

# 0 while process $1 exists and is not a zombie.
is_running() {
    local stat
    [[ -n $1 ]] || return 1
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# Starts `name log [env NAME=value...] program args...` in its own session, so a
# Ctrl-C in the terminal reaches only this script, which then stops the parts in
# order. Output goes to the log; the lock's descriptor is not inherited. `env`
# execs the program, so the pid is the program's.
launch() {
    local name=$1 log=$2
    shift 2
    local program="" arg shown=()
    for arg in "$@"; do
        if [[ -z $program && $arg != env && ! $arg =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
            program=$arg
        fi
        # The command line goes into the log: passwords do not.
        if [[ $arg =~ ^[A-Z_]*PASSWORD=. ]]; then
            arg="${arg%%=*}=(hidden)"
        fi
        shown+=("$arg")
    done
    if [[ -f $log ]]; then
        mv -f "$log" "$log.prev"
    fi
    printf '%s: started by %s: %s\n' "$(date -u +%FT%TZ)" "$PROG" "${shown[*]}" >"$log"
    setsid "$@" </dev/null >>"$log" 2>&1 9>&- &
    PID[$name]=$!
    LOG[$name]=$log
    STARTED+=("$name")
    # For the watchdog and for a later run: the pid and the program it runs.
    printf '%s %s\n' "${PID[$name]}" "$(readlink -f "$program")" >"$RUN_DIR/$name.pid"
}

# The end of process $1's log(s), indented.
log_tail() {
    local name=$1 file
    local files=("${LOG[$name]}")
    [[ $name == clickhouse ]] && files+=("$LOG_DIR/clickhouse-server.err.log")
    for file in "${files[@]}"; do
        [[ -s $file ]] || continue
        printf '  --- last lines of %s ---\n' "$file" >&2
        tail -n 30 "$file" | sed 's/^/  | /' >&2
    done
}

# A started process that is gone: the name of the first, or 1.
first_dead() {
    local name
    for name in "${STARTED[@]}"; do
        if ! is_running "${PID[$name]:-}"; then
            printf '%s\n' "$name"
            return 0
        fi
    done
    return 1
}

fail_with_log() {
    local name=$1 why=$2
    log_tail "$name"
    die "$name $why; stopping everything"
}

# Waits until `probe args...` succeeds for process $1, at most $2 seconds; fails,
# showing the log, when the deadline passes or any started process exits.
wait_ready() {
    local name=$1 timeout=$2 dead
    shift 2
    local started deadline
    started=$(now_ms)
    deadline=$((started + timeout * 1000))
    until "$@"; do
        if dead=$(first_dead); then
            fail_with_log "$dead" "exited during start-up (pid ${PID[$dead]})"
        fi
        (($(now_ms) < deadline)) || fail_with_log "$name" "was not ready after ${timeout} s"
        sleep 0.1
    done
    say "$name ready in $(($(now_ms) - started)) ms"
}

# SIGTERM to each named process, then SIGKILL to those still running after
# STOP_GRACE_SECS (at once after a second Ctrl-C).
stop_group() {
    local name pids=() deadline
    for name in "$@"; do
        [[ -n ${PID[$name]:-} ]] || continue
        if is_running "${PID[$name]}"; then
            kill -TERM "${PID[$name]}" 2>/dev/null || true
            pids+=("$name")
        fi
    done
    deadline=$(($(now_ms) + STOP_GRACE_SECS * 1000))
    for name in "${pids[@]}"; do
        while is_running "${PID[$name]}" && ((FORCE_STOP == 0 && $(now_ms) < deadline)); do
            sleep 0.1
        done
        if is_running "${PID[$name]}"; then
            warn "$name did not stop within ${STOP_GRACE_SECS} s: killing it"
            kill -KILL "${PID[$name]}" 2>/dev/null || true
        fi
    done
    for name in "$@"; do
        [[ -n ${PID[$name]:-} ]] || continue
        wait "${PID[$name]}" 2>/dev/null || true
        rm -f "$RUN_DIR/$name.pid"
        unset "PID[$name]"
    done
}

# Stops everything this run started, last started first: the services (the
# gateway first: no new events), then the consumer while NATS and ClickHouse are
# still there to finish its batch, then the servers.
stop_all() {
    ((STOPPING == 0)) || return 0
    STOPPING=1
    [[ -z $SLEEP_PID ]] || kill "$SLEEP_PID" 2>/dev/null || true
    if ((${#PID[@]} > 0)); then
        say "stopping"
        stop_group gateway query
        stop_group consumer
        stop_group clickhouse nats
    fi
    if [[ -n $WATCHDOG_PID ]]; then
        kill -TERM -- "-$WATCHDOG_PID" 2>/dev/null || true
        wait "$WATCHDOG_PID" 2>/dev/null || true
        WATCHDOG_PID=""
    fi
    say "stopped"
}

on_signal() {
    if ((STOPPING == 1)); then
        FORCE_STOP=1
        warn "second signal: killing what is left"
        return 0
    fi
    say "received SIG$1"
    exit 0
}

# If this script is killed outright (SIGKILL), nothing above runs: a small
# watchdog in its own session then stops the processes recorded in $RUN_DIR,
# checking that each pid still runs the recorded program.
start_watchdog() {
    # shellcheck disable=SC2016 # expanded by the watchdog's shell
    setsid bash -c '
        parent=$1 run_dir=$2 grace=$3
        trap "exit 0" TERM
        alive() { # exists and is not a zombie (orphans may wait a while to be reaped)
            local stat
            read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
            stat=${stat##*) }
            [[ ${stat:0:1} != Z ]]
        }
        while kill -0 "$parent" 2>/dev/null; do sleep 1; done
        pids=()
        for file in "$run_dir"/*.pid; do
            [[ -f $file ]] || continue
            read -r pid exe <"$file" || continue
            if [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$exe" ]]; then
                kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
            fi
            rm -f "$file"
        done
        for ((i = 0; i < grace * 10; i++)); do
            alive=0
            for pid in "${pids[@]}"; do alive "$pid" && alive=1; done
            ((alive)) || exit 0
            sleep 0.1
        done
        for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    ' eye-local-watchdog "$$" "$RUN_DIR" "$STOP_GRACE_SECS" </dev/null >/dev/null 2>&1 9>&- &
    WATCHDOG_PID=$!
}

# Processes a killed earlier run left behind (the watchdog should have stopped them).
stop_leftovers() {
    local file pid exe
    for file in "$RUN_DIR"/*.pid; do
        [[ -f $file ]] || continue
        read -r pid exe <"$file" || true
        if [[ -n ${pid:-} && $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "${exe:-}" ]]; then
            warn "stopping $(basename "$file" .pid) (pid $pid) left running by an earlier run"
            kill -TERM "$pid" 2>/dev/null || true
            local i
            for ((i = 0; i < STOP_GRACE_SECS * 10; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$file"
    done
}

# JetStream reserves a file stream's whole byte limit when it creates it,
# against a store limit of 75% of the disk space free when nats-server starts
# (local.conf sets none). The services' default limits (EYE_EVENTS 8 GiB, a
# tenth each for the rejects and dead letters: 9.6 GiB) need ~14 GiB free with
# room for ClickHouse; with less, a stack would never get ready ("insufficient
# storage resources"). So unless EYE_STREAM_MAX_BYTES is given, the limit is
# lowered to half the free space of $1, and said so.
fit_streams_to_disk() {
    [[ -z ${EYE_STREAM_MAX_BYTES:-} ]] || return 0
    local avail mib=$((1024 * 1024))
    avail=$(df --output=avail -B1 "$1" 2>/dev/null | tail -n 1 | tr -d ' ')
    [[ $avail =~ ^[0-9]+$ ]] || return 0
    ((avail / 4 * 3 < DEFAULT_STREAMS_BYTES + 1024 * mib)) || return 0
    ((avail >= MIN_FREE_MIB * mib)) ||
        die "only $((avail / mib)) MiB free in $1: the stack needs at least $MIN_FREE_MIB MiB (NATS's stream and ClickHouse's data)"
    export EYE_STREAM_MAX_BYTES=$((avail / 2 / mib * mib))
    warn "only $((avail / mib)) MiB free in $1: EYE_STREAM_MAX_BYTES=$EYE_STREAM_MAX_BYTES ($((EYE_STREAM_MAX_BYTES / mib)) MiB) instead of 8 GiB, which JetStream could not reserve; set it to choose"
}

# ---------------------------------------------------------------------------
# up: the parts

start_nats() {
    local bin
    bin=$(locate_program nats-server EYE_NATS_SERVER_BIN) || die "nats-server not found"
    launch nats "$LOG_DIR/nats.log" env \
        EYE_NATS_PORT="$EYE_NATS_PORT" \
        EYE_NATS_MONITOR_PORT="$EYE_NATS_MONITOR_PORT" \
        EYE_NATS_STORE_DIR="$EYE_HOME/nats" \
        EYE_NATS_GATEWAY_PASSWORD="$NATS_GATEWAY_PASSWORD" \
        EYE_NATS_CONSUMER_PASSWORD="$NATS_CONSUMER_PASSWORD" \
        EYE_NATS_DEMO_PASSWORD="$NATS_DEMO_PASSWORD" \
        "$bin" --config "$REPO_ROOT/deploy/nats/local.conf"
    wait_ready nats "$NATS_START_SECS" http_ok "$EYE_NATS_MONITOR_PORT" "/healthz?js-enabled-only=true"
}

clickhouse_ping() {
    local answer
    answer=$(http_request GET "$EYE_CLICKHOUSE_HTTP_PORT" /ping) || return 1
    [[ $answer == $'200\nOk.'* ]]
}

start_clickhouse() {
    local bin
    bin=$(locate_program clickhouse-server EYE_CLICKHOUSE_SERVER_BIN) || die "clickhouse-server not found"
    write_clickhouse_config
    launch clickhouse "$LOG_DIR/clickhouse.log" \
        "$bin" --config-file="$EYE_HOME/clickhouse/config.xml"
    wait_ready clickhouse "$CLICKHOUSE_START_SECS" clickhouse_ping
}

start_services() {
    local schemas="$REPO_ROOT/schemas"
    # The registered clients, among them the demo client (local use only).
    local clients="$REPO_ROOT/deploy/clients.toml"
    local nats_url="nats://127.0.0.1:$EYE_NATS_PORT"
    local clickhouse_url="http://127.0.0.1:$EYE_CLICKHOUSE_HTTP_PORT"

    # The consumer writes as ClickHouse's default user (loopback only, no password).
    # It starts first: its migrations create the database and tables the query
    # service reads. NATS passwords go by environment too.
    launch consumer "$LOG_DIR/consumer.log" env EYE_CLICKHOUSE_PASSWORD= \
        EYE_NATS_USER="$NATS_CONSUMER_USER" EYE_NATS_PASSWORD="$NATS_CONSUMER_PASSWORD" \
        "$BIN_DIR/eye-consumer" \
        --listen "127.0.0.1:$EYE_CONSUMER_PORT" \
        --schemas-dir "$schemas" \
        --nats-url "$nats_url" \
        --clickhouse-url "$clickhouse_url" \
        --clickhouse-database "$DATABASE" \
        --clickhouse-user default
    wait_ready consumer "$SERVICE_START_SECS" http_ok "$EYE_CONSUMER_PORT" /readyz

    launch gateway "$LOG_DIR/gateway.log" env \
        EYE_NATS_USER="$NATS_GATEWAY_USER" EYE_NATS_PASSWORD="$NATS_GATEWAY_PASSWORD" \
        "$BIN_DIR/eye-gateway" \
        --listen "127.0.0.1:$EYE_GATEWAY_PORT" \
        --schemas-dir "$schemas" \
        --clients-file "$clients" \
        --nats-url "$nats_url"
    wait_ready gateway "$SERVICE_START_SECS" http_ok "$EYE_GATEWAY_PORT" /readyz

    # The query service reads as eye_reader; its password goes by environment, not
    # by flag (flags show in ps).
    launch query "$LOG_DIR/query.log" env EYE_CLICKHOUSE_PASSWORD="$READER_PASSWORD" \
        "$BIN_DIR/eye-query" \
        --listen "127.0.0.1:$EYE_QUERY_PORT" \
        --clients-file "$clients" \
        --clickhouse-url "$clickhouse_url" \
        --clickhouse-database "$DATABASE" \
        --clickhouse-user eye_reader
    wait_ready query "$SERVICE_START_SECS" http_ok "$EYE_QUERY_PORT" /readyz
}

print_summary() {
    local gateway="http://127.0.0.1:$EYE_GATEWAY_PORT"
    local query="http://127.0.0.1:$EYE_QUERY_PORT"
    local session="e2085be5-9137-4e4e-80b5-f1ffddc25423"
    cat <<EOF

The Eye is running. Data and logs: $EYE_HOME (logs in $LOG_DIR)

  ingest gateway   $gateway           POST /v1/events
  query service    $query           GET /v1/sessions/{session_id}/events
  session explorer $query/ui#token=$DEMO_READ_TOKEN
  consumer         http://127.0.0.1:$EYE_CONSUMER_PORT           /healthz /readyz /metrics
  NATS             nats://127.0.0.1:$EYE_NATS_PORT           monitoring http://127.0.0.1:$EYE_NATS_MONITOR_PORT
  ClickHouse       http://127.0.0.1:$EYE_CLICKHOUSE_HTTP_PORT           clickhouse-client --port $EYE_CLICKHOUSE_TCP_PORT
                   database $DATABASE; users: default (no password, loopback only),
                   eye_reader (read-only, password $READER_PASSWORD)

Demo client -- FOR LOCAL USE ONLY, never deploy these credentials:
  client id    $DEMO_CLIENT
  write key    $DEMO_WRITE_KEY
  HMAC secret  $DEMO_SECRET
  read token   $DEMO_READ_TOKEN
  NATS user    $NATS_DEMO_USER, password $NATS_DEMO_PASSWORD: publishes only to
               eye.events.$DEMO_CLIENT.>, acknowledgements on inbox prefix _INBOX.$DEMO_CLIENT

Send an event with the write key (as a browser would):
  curl -sS -X POST $gateway/v1/events \\
    -H 'Authorization: Bearer $DEMO_WRITE_KEY' -H 'Content-Type: application/json' \\
    -d '{"session_id": "$session", "category": "party", "name": "AppName", "data": {"host": "www.party.com", "path": "/"}, "timestamp": "2021-09-26 09:15:27.243860"}'

Read the session back:
  curl -sS $query/v1/sessions/$session/events \\
    -H 'Authorization: Bearer $DEMO_READ_TOKEN'

Ctrl-C stops everything.
EOF
}

cmd_up() {
    (($# == 0)) || die "up takes no arguments"
    read_ports
    DATABASE=${EYE_CLICKHOUSE_DATABASE:-eye}
    [[ $DATABASE =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "EYE_CLICKHOUSE_DATABASE=$DATABASE is not a plain identifier"
    READER_PASSWORD=${EYE_CLICKHOUSE_READER_PASSWORD:-eye_reader_local_password}
    [[ -n $READER_PASSWORD && $READER_PASSWORD != *[\<\>\&\|\\]* ]] ||
        die "EYE_CLICKHOUSE_READER_PASSWORD must be non-empty, without <>&|\\"
    NATS_GATEWAY_PASSWORD=${EYE_NATS_GATEWAY_PASSWORD:-eye_gateway_local_password}
    NATS_CONSUMER_PASSWORD=${EYE_NATS_CONSUMER_PASSWORD:-eye_consumer_local_password}
    NATS_DEMO_PASSWORD=${EYE_NATS_DEMO_PASSWORD:-eye_demo_nats_password}
    local var
    for var in NATS_GATEWAY_PASSWORD NATS_CONSUMER_PASSWORD NATS_DEMO_PASSWORD; do
        # nats-server reads a value of digits only as a number, not a password.
        [[ ${!var} =~ [^0-9] ]] || die "EYE_$var must be non-empty and not only digits"
    done
    local tool
    for tool in setsid flock; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian package util-linux)"
    done
    require_cargo
    resolve_home

    ensure_servers
    build_services
    fit_streams_to_disk "$EYE_HOME"

    # One stack per EYE_HOME: two would share the NATS store and ClickHouse's data.
    # Taken after the build, so no cargo or apt helper inherits it.
    exec 9>"$RUN_DIR/lock"
    flock -n 9 || die "another '$PROG up' is running with EYE_HOME=$EYE_HOME"
    stop_leftovers
    check_ports_free

    trap stop_all EXIT
    trap 'on_signal INT' INT
    trap 'on_signal TERM' TERM
    trap 'on_signal HUP' HUP
    start_watchdog

    start_nats
    start_clickhouse
    start_services
    print_summary

    # In the foreground until a signal (the traps above) or a part exits. A sleep
    # in the background keeps `wait` interruptible by the signals.
    local dead status
    while true; do
        if dead=$(first_dead); then
            wait "${PID[$dead]}" 2>/dev/null && status=0 || status=$?
            fail_with_log "$dead" "exited (status $status)"
        fi
        sleep 1 &
        SLEEP_PID=$!
        wait "$SLEEP_PID" || true
        SLEEP_PID=""
    done
}

# ---------------------------------------------------------------------------

main() {
    local command=${1:-help}
    (($# == 0)) || shift
    case $command in
        up) cmd_up "$@" ;;
        test) cmd_test "$@" ;;
        help | -h | --help) usage ;;
        *) die "unknown command: $command (commands: up, test, help)" ;;
    esac
}

# Sourcing the file (bash -c '. deploy/local.sh; ...') defines the functions only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
