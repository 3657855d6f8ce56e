#!/usr/bin/env python3
"""Runs every ClickHouse statement The Eye sends on a current ClickHouse.

The schema must run unchanged on ClickHouse 18.16 (what the tests start) and
on current versions (what `docker compose` runs). The consumer's tests prove
the first half; this script proves the second, on the ClickHouse embedded in
the `chdb-core` Python package (26.x), without a server:

  1. every migration in migrations/ (in version order), twice: idempotent;
  2. every statement of consumer/sql/ (see consumer/sql/README.md), with the
     example binds and rows the files give: the bookkeeping the migrations
     runner does, the consumer's INSERT column lists, the readiness query and
     the recommended reads;
  3. checks on the results: a redelivered row is read once (FINAL), the
     materialized view fills events_by_category, microseconds survive;
  4. every read shape of the query service (query-service/sql/reads.sql,
     generated from its code with example values) and every ```sql block of
     docs/sql.md (the analysts' queries).

Prints each statement as it runs; exits non-zero on the first failure (an
error from ClickHouse, a file nobody listed here, a wrong result).

Usage: python3 deploy/chdb_check.py   (needs `pip install chdb-core`)
"""

import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "migrations")
CONSUMER_SQL = os.path.join(ROOT, "consumer", "sql")
QUERY_SQL = os.path.join(ROOT, "query-service", "sql")
DOCS_SQL = os.path.join(ROOT, "docs", "sql.md")
DATABASE = "eye_chdb_check"

# Every file of consumer/sql/, in the order it runs. A new file must be added
# here, or the check fails: nothing the consumer sends goes unchecked.
SQL_FILES = [
    "create_database.sql",
    "create_schema_migrations.sql",
    # (the migrations run here)
    "insert_schema_migrations.sql",
    "applied_migrations.sql",
    "ping.sql",
    "insert_events.sql",
    "insert_event_errors.sql",
    "read_session.sql",
    "read_category.sql",
    "read_errors.sql",
    "replay_candidates.sql",
    "replay_stored.sql",
]
RUN_MIGRATIONS_AFTER = "create_schema_migrations.sql"


class CheckFailed(Exception):
    pass


def statements(text):
    """The statements of a SQL file: `--` lines are comments, a statement
    ends with `;` at the end of a line or at the end of the file (the rule of
    consumer/src/sql.rs)."""
    out, current = [], []
    for line in text.splitlines():
        if line.lstrip().startswith("--"):
            continue
        stripped = line.rstrip()
        if stripped.endswith(";"):
            current.append(stripped[:-1])
            out.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    out.append("\n".join(current).strip())
    return [s for s in out if s]


def comment_value(text, key):
    """The rest of the `-- <key>:` line, or None."""
    for line in text.splitlines():
        m = re.match(r"\s*--\s*" + re.escape(key) + r":\s*(.*)$", line)
        if m:
            return m.group(1).strip()
    return None


def split_literals(text):
    """`'a, b', 1, 2` -> ["'a, b'", "1", "2"] (commas outside quotes)."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and quoted and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if c == "'":
            quoted = not quoted
        if c == "," and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += c
        i += 1
    if current.strip():
        parts.append(current.strip())
    return parts


def bind(statement, literals, name):
    pieces = statement.split("?")
    if len(pieces) - 1 != len(literals):
        raise CheckFailed(
            f"{name}: {len(pieces) - 1} binds but {len(literals)} example values"
        )
    out = pieces[0]
    for literal, rest in zip(literals, pieces[1:]):
        out += literal + rest
    return out


class Runner:
    def __init__(self, session):
        self.session = session
        self.count = 0
        self.version = "?"

    def run(self, name, sql, fmt="CSV"):
        first = " ".join(sql.split())[:110]
        print(f"  {name}: {first}", flush=True)
        try:
            result = self.session.query(sql, fmt)
        except Exception as error:  # chdb raises its own error type
            raise CheckFailed(f"{name} failed on ClickHouse {self.version}:\n{sql}\n{error}")
        self.count += 1
        return str(result)

    def scalar(self, name, sql):
        return self.run(name, sql).strip().strip('"')


def sql_file(name):
    with open(os.path.join(CONSUMER_SQL, name), encoding="utf-8") as f:
        return f.read()


def migration_files():
    names = sorted(n for n in os.listdir(MIGRATIONS) if n.endswith(".sql"))
    for i, name in enumerate(names, start=1):
        if not name.startswith(f"{i:04d}_"):
            raise CheckFailed(f"migrations/{name}: expected version {i:04d}")
    return names


def run_migrations(runner):
    for name in migration_files():
        with open(os.path.join(MIGRATIONS, name), encoding="utf-8") as f:
            text = f.read()
        for i, statement in enumerate(statements(text), start=1):
            runner.run(f"migrations/{name}#{i}", statement)


def run_consumer_sql(runner):
    listed = set(SQL_FILES)
    present = {n for n in os.listdir(CONSUMER_SQL) if n.endswith(".sql")}
    if present != listed:
        raise CheckFailed(
            "consumer/sql/ and SQL_FILES in deploy/chdb_check.py differ: "
            f"unlisted {sorted(present - listed)}, missing {sorted(listed - present)}"
        )
    for name in SQL_FILES:
        text = sql_file(name)
        found = statements(text)
        if len(found) != 1:
            raise CheckFailed(f"consumer/sql/{name}: {len(found)} statements, expected 1")
        statement = found[0].replace("{database}", DATABASE)
        label = f"consumer/sql/{name}"
        if name.startswith("insert_"):
            row = comment_value(text, "example row")
            if row is None:
                raise CheckFailed(f"{label}: no '-- example row:' line")
            runner.run(label, f"{statement} VALUES {row}")
            if name == "insert_events.sql":
                # A redelivered copy of the same event: readers must see one.
                runner.run(label + " (redelivered copy)", f"{statement} VALUES {row}")
        elif "?" in statement:
            binds = comment_value(text, "example binds")
            if binds is None:
                raise CheckFailed(f"{label}: binds but no '-- example binds:' line")
            result = runner.run(label, bind(statement, split_literals(binds), label))
            if name in ("read_session.sql", "read_category.sql", "read_errors.sql",
                        "replay_candidates.sql", "replay_stored.sql"):
                rows = [line for line in result.splitlines() if line.strip()]
                if len(rows) != 1:
                    raise CheckFailed(f"{label}: expected the example row once, got {len(rows)}:\n{result}")
        else:
            runner.run(label, statement)
        if name == "create_database.sql":
            # Everything after it runs in the database, as the consumer's
            # client does with its `database` setting.
            runner.session.query(f"USE {DATABASE}")
        if name == RUN_MIGRATIONS_AFTER:
            print("  -- migrations, first run", flush=True)
            run_migrations(runner)
            print("  -- migrations, second run (idempotent)", flush=True)
            run_migrations(runner)


def check_results(runner):
    checks = [
        ("events copies stored", "SELECT count() FROM events", "2"),
        ("events read once", "SELECT count() FROM events FINAL", "1"),
        ("view filled", "SELECT count() FROM events_by_category FINAL", "1"),
        ("microseconds kept", "SELECT timestamp_us FROM events FINAL", "1632647727243860"),
        ("UTC seconds", "SELECT toString(timestamp) FROM events FINAL", "2021-09-26 09:15:27"),
        ("migration recorded", "SELECT count() FROM schema_migrations FINAL", "1"),
    ]
    for name, sql, want in checks:
        got = runner.scalar("check " + name, sql)
        if got != want:
            raise CheckFailed(f"check {name}: {sql} gave {got!r}, expected {want!r}")


def run_reads(runner):
    """The query service's statements and the analysts' queries: they must
    run (their answers are checked by the Rust tests on 18.16)."""
    for name in sorted(n for n in os.listdir(QUERY_SQL) if n.endswith(".sql")):
        with open(os.path.join(QUERY_SQL, name), encoding="utf-8") as f:
            found = statements(f.read())
        if not found:
            raise CheckFailed(f"query-service/sql/{name}: no statement")
        for i, statement in enumerate(found, start=1):
            runner.run(f"query-service/sql/{name}#{i}", statement)
    with open(DOCS_SQL, encoding="utf-8") as f:
        blocks = re.findall(r"^```sql\n(.*?)^```", f.read(), re.S | re.M)
    if not blocks:
        raise CheckFailed("docs/sql.md: no ```sql block")
    for i, block in enumerate(blocks, start=1):
        runner.run(f"docs/sql.md#{i}", block.strip())


def main():
    try:
        import chdb
        from chdb import session as chdb_session
    except ImportError:
        print("chdb_check: the chdb module is missing; run: pip install chdb-core", file=sys.stderr)
        return 2
    # chdb reads a config.xml from the working directory if there is one:
    # run it somewhere empty, with its data in a throwaway directory.
    workdir = tempfile.mkdtemp(prefix="eye-chdb-")
    os.chdir(workdir)
    session = chdb_session.Session(os.path.join(workdir, "data"))
    runner = Runner(session)
    try:
        runner.version = runner.scalar("version", "SELECT version()")
        print(f"chdb_check: ClickHouse {runner.version} (chdb {chdb.__version__})", flush=True)
        run_consumer_sql(runner)
        check_results(runner)
        run_reads(runner)
    except CheckFailed as failure:
        print(f"chdb_check: FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"chdb_check: OK, {runner.count} statements ran on ClickHouse {runner.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
