"""What only a store on a PostgreSQL server has (``cairn.Store("postgres://...")``): URLs whose
password never shows, other threads and pickled copies connecting with the URL as given, a
server that cannot be reached or refuses, and a connection lost inside a transaction. Each test
has a fresh schema (conftest: `pg`, `pg_url`); without a server the tests skip, saying why, and
fail under CAIRN_NO_SKIP.

Every feature's behaviour on the server is tested by the feature's own tests, which run on a
file and on the server (conftest: `any_store`, `any_clocked`, `location`)."""

from __future__ import annotations

import pickle
import threading
from typing import List

import pytest

import cairn

from conftest import pg_sql


def test_other_threads_and_a_pickled_copy_connect_with_the_url_as_given(pg_url: str) -> None:
    # The server trusts every connection, so any password is accepted; what matters is that the
    # store connects its other threads with the full URL, not with the redacted one it shows.
    url = pg_url.replace("://postgres@", "://postgres:s3cret-pw@", 1)
    assert url != pg_url, "CAIRN_TEST_PG has no user 'postgres': adjust this test"
    with cairn.Store(url) as s:
        assert "s3cret-pw" not in s.path and "s3cret-pw" not in repr(s)
        assert s.path.startswith("postgres://postgres:***@")
        s.cache()["k"] = "main"
        seen: List[object] = []
        t = threading.Thread(target=lambda: seen.append(s.cache().get("k")))
        t.start()
        t.join()
        assert seen == ["main"]
        with pickle.loads(pickle.dumps(s)) as copy:
            assert copy.cache()["k"] == "main"


@pytest.mark.parametrize(
    "url",
    [
        "postgres://postgres:s3cret-pw@127.0.0.1:1/test",  # nothing listens on port 1
        "postgresql://postgres:s3cret-pw@127.0.0.1:1/test?cairn_schema=x",
    ],
)
def test_an_unreachable_server_is_unavailable_and_the_password_never_shows(url: str) -> None:
    with pytest.raises(cairn.UnavailableError) as e:
        cairn.Store(url)
    assert isinstance(e.value, ConnectionError) and e.value.kind == "unavailable"
    assert not e.value.maybe_committed, "nothing was sent"
    assert "s3cret-pw" not in str(e.value) and "s3cret-pw" not in repr(e.value)
    assert "postgres:***@127.0.0.1:1" in str(e.value), "the message names the server"
    back = pickle.loads(pickle.dumps(e.value))
    assert type(back) is cairn.UnavailableError and str(back) == str(e.value)


@pytest.mark.parametrize(
    "url",
    ["postgres://postgres:s3cret-pw@127.0.0.1:notaport/test", "postgres://postgres:s3cret-pw@127.0.0.1/test?sslmode=require"],
)
def test_refused_urls_never_show_their_password(url: str) -> None:
    with pytest.raises(cairn.InvalidInputError) as e:
        cairn.Store(url)
    assert "s3cret-pw" not in str(e.value) and "postgres:***@127.0.0.1" in str(e.value)


def test_a_server_that_refuses_the_connection_never_shows_the_password(pg_server: str) -> None:
    url = pg_server.replace("://postgres@", "://postgres:s3cret-pw@", 1)
    url = url.rsplit("/", 1)[0] + "/no_such_database_for_cairn"
    with pytest.raises(cairn.Error) as e:
        cairn.Store(url)
    assert "s3cret-pw" not in str(e.value) and "postgres:***@" in str(e.value)


def test_a_password_given_as_a_url_parameter_never_shows() -> None:
    with pytest.raises(cairn.UnavailableError) as e:
        cairn.Store("postgres://postgres@127.0.0.1:1/test?password=s3cret-pw")
    assert "s3cret-pw" not in str(e.value)


def test_a_connection_to_the_server_lost_inside_a_transaction_is_unavailable_and_nothing_of_it_commits(
    pg: cairn.Store, pg_server: str, pg_url: str
) -> None:
    schema = pg_url.rsplit("cairn_schema=", 1)[1]
    pg.cache()["before"] = 1
    with pytest.raises(cairn.UnavailableError) as e:
        with pg.transaction() as tx:
            tx.cache()["inside"] = 1
            # The server ends this store's session (as a restart or a network cut would).
            killed = pg_sql(
                pg_server,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE query LIKE '%\"{schema}\"%' AND pid <> pg_backend_pid()",
            )
            assert int(killed) >= 1, "the store's session was found"
            tx.cache()["after"] = 1
    assert not e.value.maybe_committed
    # The next call outside a transaction connects again.
    c = pg.cache()
    assert c.get("before") == 1 and c.get("inside") is None and c.get("after") is None
