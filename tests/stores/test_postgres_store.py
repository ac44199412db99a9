"""What only `PostgresStore` does: its URL, its password, its schema, its connection.

What every store does is in test_conformance.py (which runs against
PostgresStore too). These tests need the PostgreSQL server of
``STATEWARD_PG_URL`` and skip without it (they fail in CI, which always sets
it), except those that never reach a server.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import traceback
import urllib.parse
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pg_support import drop_pg_schema, pg_url

from stateward.actors import (
    ActorCrashed,
    PostgresStore,
    Runtime,
    StateManager,
    StoreOpenError,
    StoreWriteError,
)
from stateward.actors.stores._postgres_open import Problem
from stateward.core import StatewardError

SECRET = "S3cret-Pa55word"


def with_password(url: str, password: str = SECRET) -> str:
    """``url`` with ``password`` as its password (the test server trusts every login)."""
    parts = urllib.parse.urlsplit(url)
    user = parts.username or "postgres"
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def everything_said(exc: BaseException) -> str:
    """All an error shows: its message, its traceback, and the errors chained to it."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


def raw(url: str) -> psycopg.Connection:
    return psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
    )


def test_both_url_forms_open_the_same_store(pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    sqlalchemy_form = url.replace("postgresql://", "postgresql+psycopg://", 1)
    plain_form = sqlalchemy_form.replace("postgresql+psycopg://", "postgresql://", 1)
    with Runtime("a", store=PostgresStore(sqlalchemy_form, schema=schema)) as runtime:
        StateManager({"n": 0}, name="c", runtime=runtime).update_state({"n": 3})
    with Runtime("b", store=PostgresStore(plain_form, schema=schema)) as runtime:
        counter = StateManager({"n": 0}, name="c", runtime=runtime)
        assert counter.recovered and counter.get_state() == {"n": 3}


def test_the_password_appears_in_no_repr_error_or_log_line(
    pg_schema: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, schema = pg_schema
    caplog.set_level(logging.DEBUG)
    store = PostgresStore(with_password(url), schema=schema, durability="batched")
    shown = [repr(store), str(store), store.url]
    with Runtime("secret", store=store) as runtime:
        counter = StateManager({"n": 0}, name="c", runtime=runtime)
        counter.update_state({"n": 1})
        shown += [repr(runtime.stats()), repr(counter.stats()), repr(store.actors())]
    # A commit on the closed store fails, naming the store.
    with pytest.raises(StoreWriteError) as failed:
        store._write([])
    shown.append(everything_said(failed.value))
    assert "postgres@" in store.url and "/" in store.url  # it does show where the store is
    for text in [*shown, caplog.text]:
        assert SECRET not in text


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("127.0.0.1:1/somedb", ["127.0.0.1:1", "'somedb'", "Connection refused"]),
        ("{server}/no_such_database_here", ["'no_such_database_here'", "does not exist"]),
    ],
)
def test_a_server_that_cannot_be_reached_names_host_and_database_but_not_the_password(
    where: str, words: list[str]
) -> None:
    server = urllib.parse.urlsplit(pg_url()).netloc.rsplit("@", 1)[-1]
    url = f"postgresql://postgres:{SECRET}@{where.format(server=server)}"
    with pytest.raises(StoreOpenError) as opened:
        PostgresStore(url, connect_timeout=2)
    assert isinstance(opened.value, StatewardError) and isinstance(opened.value, OSError)
    said = everything_said(opened.value)
    assert "cannot connect to the PostgreSQL server" in str(opened.value)
    for word in words:
        assert word in str(opened.value)
    assert SECRET not in said
    assert opened.value.__cause__ is None and opened.value.__suppress_context__


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"mysql://root:{SECRET}@db:3306/app", ["not a PostgreSQL URL", "'mysql'"]),
        (f"postgresql://u:{SECRET}@db:port/app", ["not a valid URL"]),
        (f"postgresql://u@db:5432/app?password={SECRET}&nonsense=1", ["nonsense"]),
        (f"postgresql://u:{SECRET}@127.0.0.1:1/app?sslmode={SECRET}", ["sslmode"]),
    ],
)
def test_a_bad_url_is_refused_clearly_without_its_password(url: str, words: list[str]) -> None:
    with pytest.raises(StoreOpenError) as opened:
        PostgresStore(url, connect_timeout=1)
    for word in words:
        assert word in str(opened.value)
    assert SECRET not in everything_said(opened.value)


def test_a_url_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(StoreOpenError, match="the URL must be a str, got int"):
        PostgresStore(5432)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"durability": "snapshot"}, "snapshot mode is SQLiteStore's"),
        ({"schema": "Robert'); DROP TABLE x"}, "schema must be a lower-case SQL name"),
        ({"snapshot_every": 0}, "snapshot_every must be an int >= 1"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(arguments: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("'", ".")):
        PostgresStore("postgresql://nobody@127.0.0.1:1/none", **arguments)


def test_two_schemas_in_one_database_keep_their_actors_apart(
    pg_schema: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    url, schema = pg_schema
    other = schema + "_b"
    request.addfinalizer(lambda: drop_pg_schema(url, other))
    with (
        Runtime("one", store=PostgresStore(url, schema=schema)) as one,
        Runtime("two", store=PostgresStore(url, schema=other)) as two,
    ):
        StateManager({"n": 0}, name="same", runtime=one).update_state({"n": 1})
        in_two = StateManager({"n": 0}, name="same", runtime=two)  # not owned by "one"
        assert not in_two.recovered
        in_two.update_state({"n": 2})
    store = PostgresStore(url, schema=schema)
    try:
        assert [a.version for a in store.actors()] == [1]
    finally:
        store.close()


def test_a_schema_that_is_not_a_store_or_is_newer_is_refused_untouched(
    pg_schema: tuple[str, str],
) -> None:
    url, schema = pg_schema
    with raw(url) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.invoices (id int)")
    with pytest.raises(StoreOpenError, match="holds tables that are not a stateward store"):
        PostgresStore(url, schema=schema)
    with raw(url) as conn:
        conn.execute(f"DROP TABLE {schema}.invoices")
    PostgresStore(url, schema=schema).close()
    with raw(url) as conn:
        conn.execute(f"UPDATE {schema}.stateward_meta SET value = '2' WHERE key = 'schema'")
    with pytest.raises(StoreOpenError, match=r"newer stateward \(store schema 2"):
        PostgresStore(url, schema=schema)


def kill_connection(url: str, schema: str) -> None:
    """End the server process of the store's connection, as a network failure would."""
    with raw(url) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"stateward:{schema}",),
        ).fetchall()
    assert ended == [(True,)]


@pytest.mark.parametrize("mode", ["strict", "batched"])
def test_a_lost_connection_fails_the_commit_in_flight_and_the_next_one_reconnects(
    pg_schema: tuple[str, str], mode: str
) -> None:
    url, schema = pg_schema
    with Runtime("lost", store=PostgresStore(url, schema=schema, durability=mode)) as runtime:
        counter = StateManager({"n": 0}, name="c", runtime=runtime, on_error="restart")
        counter.update_state({"n": 1})
        kill_connection(url, schema)
        with pytest.raises(ActorCrashed) as crashed:
            counter.update_state({"n": 2})
        cause = crashed.value.__cause__
        assert isinstance(cause, StoreWriteError)
        assert "the connection to the server was lost" in str(cause)
        assert "It was not committed" in str(cause)
        # The actor restarted from the store (on a new connection): the failed
        # commit is not there, and the next one goes through.
        assert counter.get_state() == {"n": 1} and counter.version == 1
        counter.update_state({"n": 3})
    with Runtime("after", store=PostgresStore(url, schema=schema)) as runtime:
        assert StateManager({"n": 0}, name="c", runtime=runtime).get_state() == {"n": 3}


def lose_the_connection_once(monkeypatch: pytest.MonkeyPatch, store: PostgresStore, *, after: bool):
    """The next transaction of ``store`` loses its connection: before it
    commits, or (``after``) once the server has committed it, so that the
    answer never arrives."""
    link = store._link
    real = link.transaction

    @contextlib.contextmanager
    def transaction() -> Iterator[Any]:
        monkeypatch.setattr(link, "transaction", real)  # once
        with real() as conn:
            yield conn
            if not after:
                link.drop()
                raise Problem("the connection to the server was lost (in the test)", lost=True)
        link.drop()
        raise Problem("the connection to the server was lost (in the test)", lost=True)

    monkeypatch.setattr(link, "transaction", transaction)


@pytest.mark.parametrize("after", [True, False], ids=["after-commit", "before-commit"])
def test_a_commit_whose_connection_is_lost_counts_exactly_when_the_server_has_it(
    pg_schema: tuple[str, str], monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    url, schema = pg_schema
    store = PostgresStore(url, schema=schema)
    with Runtime("doubt", store=store) as runtime:
        counter = StateManager({"n": 0}, name="c", runtime=runtime, on_error="restart")
        counter.update_state({"n": 1})
        lose_the_connection_once(monkeypatch, store, after=after)
        if after:  # committed: the store finds it on a new connection and says so
            counter.update_state({"n": 2})
            assert counter.get_state() == {"n": 2}
        else:
            with pytest.raises(ActorCrashed) as crashed:
                counter.update_state({"n": 2})
            assert isinstance(crashed.value.__cause__, StoreWriteError)
            assert counter.get_state() == {"n": 1}
    with Runtime("then", store=PostgresStore(url, schema=schema)) as runtime:
        recovered = StateManager({"n": 0}, name="c", runtime=runtime)
        assert recovered.get_state() == {"n": 2 if after else 1}


def test_the_store_works_without_sqlalchemy(pg_schema: tuple[str, str]) -> None:
    """Only psycopg is needed: the store runs with SQLAlchemy's import blocked."""
    url, schema = pg_schema
    program = (
        "import sys\n"
        "sys.modules['sqlalchemy'] = None\n"
        "from stateward.actors import PostgresStore, Runtime, StateManager\n"
        f"with Runtime('x', store=PostgresStore({url!r}, schema={schema!r})) as rt:\n"
        "    StateManager({'n': 0}, name='c', runtime=rt).update_state({'n': 1})\n"
        "print('ok', 'sqlalchemy' in sys.modules and sys.modules['sqlalchemy'] is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok False"
