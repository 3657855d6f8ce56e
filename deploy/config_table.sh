#!/usr/bin/env bash
# Prints the configuration of Eye binaries as markdown, from their own --help:
# for each binary given, a "### `name`" heading, a table of its options (flag,
# environment variable, default, description) and its subcommands. It builds
# nothing: pass the binaries, e.g.
#
#   cargo build --release --bins
#   deploy/config_table.sh target/release/eye-gateway target/release/eye-consumer target/release/eye-query
#
# With --update FILE first, the output replaces what FILE holds between the
# lines "<!-- config-table:begin ... -->" and "<!-- config-table:end -->":
#
#   deploy/config_table.sh --update docs/operations.md target/release/eye-{gateway,consumer,query}
#
# docs/operations.md holds its output between those markers, and
# query-service/tests/operations_doc.rs checks that output against each
# binary's clap command (flags, variables, defaults), so a new or changed
# option fails the test until the table is generated again.
#
# The binaries run with an empty environment (only PATH), so the variables of
# the calling shell never show up as values in the table.
set -euo pipefail

PROG=${0##*/}

usage() {
    cat <<EOF
Usage: $PROG [--update FILE] BINARY...

Runs each BINARY --help and prints its options and subcommands as markdown;
with --update, writes them into FILE between its config-table markers.
EOF
}

(($# > 0)) || {
    usage >&2
    exit 2
}
case $1 in -h | --help)
    usage
    exit 0
    ;;
esac

# Reads clap's help on stdin and prints the markdown of one binary named $1.
# Works on both of clap's layouts: description on the flag's line, or on the
# lines below it; "[env: ...]", "[default: ...]" and "[possible values: ...]"
# may be wrapped over lines.
to_markdown() {
    awk -v name="$1" '
    function flush(   text, env, def, vals, rest, flag) {
        if (spec == "") return
        text = desc
        gsub(/[ \t]+/, " ", text)
        env = ""; def = "—"; vals = ""
        if (match(text, /\[env: [^]]*\]/)) {
            env = substr(text, RSTART + 6, RLENGTH - 7)
            sub(/=.*/, "", env)
            text = substr(text, 1, RSTART - 1) substr(text, RSTART + RLENGTH)
        }
        if (match(text, /\[default: [^]]*\]/)) {
            def = substr(text, RSTART + 10, RLENGTH - 11)
            def = (def == "" || def == "\"\"") ? "(empty)" : "`" def "`"
            text = substr(text, 1, RSTART - 1) substr(text, RSTART + RLENGTH)
        }
        if (match(text, /\[possible values: [^]]*\]/)) {
            vals = substr(text, RSTART + 18, RLENGTH - 19)
            gsub(/, /, "`, `", vals)
            vals = "`" vals "`"
            text = substr(text, 1, RSTART - 1) substr(text, RSTART + RLENGTH)
        }
        # The long layout lists them as "Possible values: - a: what a is - b: ...".
        if (match(text, /Possible values: /)) {
            rest = substr(text, RSTART + RLENGTH)
            text = substr(text, 1, RSTART - 1)
            vals = ""
            while (match(rest, /- [A-Za-z0-9_-]+: /)) {
                if (vals != "") vals = vals substr(rest, 1, RSTART - 1)
                vals = vals (vals == "" ? "" : "; ") "`" substr(rest, RSTART + 2, RLENGTH - 4) "`: "
                rest = substr(rest, RSTART + RLENGTH)
            }
            vals = vals rest
        }
        gsub(/ +/, " ", text); sub(/^ /, "", text); sub(/ $/, "", text)
        gsub(/ +/, " ", vals); gsub(/ ;/, ";", vals); sub(/ $/, "", vals)
        if (vals != "") {
            if (text !~ /\.$/) text = text "."
            text = text " One of " vals (vals ~ /\.$/ ? "" : ".")
        }
        gsub(/\|/, "\\|", text)
        flag = spec
        sub(/^-[A-Za-z], /, "", flag)
        if (flag !~ /^--(help|version)$/) {
            rows = rows sprintf("| `%s` | %s | %s | %s |\n", flag, (env == "" ? "—" : "`" env "`"), def, text)
        }
        spec = ""; desc = ""
    }
    /^Commands:/ { flush(); section = "commands"; next }
    /^Options:/ { flush(); section = "options"; next }
    /^[^ \t]/ { flush(); section = ""; next }
    section == "commands" && /^  [a-z]/ {
        cmd = $1
        line = $0
        sub(/^  [^ ]+ +/, "", line)
        if (cmd != "help") { ncmd++; cmdname[ncmd] = cmd; cmddesc[ncmd] = line }
        next
    }
    section == "commands" && NF > 0 && cmd != "help" {
        line = $0
        sub(/^ +/, "", line)
        cmddesc[ncmd] = cmddesc[ncmd] " " line
        next
    }
    section == "options" && /^  -|^      -/ {
        flush()
        line = $0
        sub(/^ +/, "", line)
        # The flag and its value name end at two spaces or at the line end.
        if (match(line, /  +/)) {
            spec = substr(line, 1, RSTART - 1)
            desc = substr(line, RSTART + RLENGTH)
        } else {
            spec = line
            desc = ""
        }
        next
    }
    section == "options" && NF > 0 { desc = desc " " $0; next }
    END {
        flush()
        printf "### `%s`\n\n", name
        print "| flag | variable | default | description |"
        print "|---|---|---|---|"
        printf "%s", rows
        if (ncmd > 0) {
            printf "\nSubcommands (`%s help <subcommand>` describes each):", name
            for (i = 1; i <= ncmd; i++) printf "%s `%s`", (i == 1 ? "" : ","), cmdname[i]
            printf "\n"
        }
    }'
}

update=
if [[ $1 == --update ]]; then
    (($# >= 3)) || {
        usage >&2
        exit 2
    }
    update=$2
    shift 2
    grep -q '^<!-- config-table:begin' "$update" && grep -q '^<!-- config-table:end' "$update" || {
        printf '%s: error: %s has no config-table markers\n' "$PROG" "$update" >&2
        exit 1
    }
fi

tables() {
    local binary first=1
    for binary in "$@"; do
        [[ -x $binary ]] || {
            printf '%s: error: %s is not an executable (build it first)\n' "$PROG" "$binary" >&2
            exit 1
        }
        ((first)) || echo
        first=0
        env -i PATH="$PATH" "$binary" --help | to_markdown "$(basename "$binary")"
    done
}

if [[ -z $update ]]; then
    tables "$@"
else
    generated=$(tables "$@")
    # Everything up to the begin marker, the tables, then the end marker onwards.
    GENERATED=$generated awk '
        /^<!-- config-table:end/ { print ""; print ENVIRON["GENERATED"]; print ""; skip = 0 }
        !skip { print }
        /^<!-- config-table:begin/ { skip = 1 }
    ' "$update" >"$update.tmp"
    mv "$update.tmp" "$update"
    printf '%s: updated %s\n' "$PROG" "$update" >&2
fi
