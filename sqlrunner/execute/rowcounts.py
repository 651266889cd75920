"""Sending a file whose rows nobody reads: count them as they arrive, keep none.

``cursor.execute`` keeps a statement's whole result in libpq before returning, so a file
ending in a ``SELECT`` of a million rows would cost the runner hundreds of megabytes. When
the output is not shown, the rows are received in chunks (libpq 17's chunked-rows mode)
and dropped, and only each statement's row count is kept: the runner's memory no longer
grows with what a query returns.
"""

from __future__ import annotations

import psycopg
from psycopg import errors, generators, pq
from psycopg.abc import PQGen
from psycopg.waiting import Wait

CHUNK_ROWS = 10_000

_CHUNK = pq.ExecStatus.TUPLES_CHUNK
_TUPLES = pq.ExecStatus.TUPLES_OK
_FAILED = (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.BAD_RESPONSE)
_COPY_IN = pq.ExecStatus.COPY_IN
_COPY_OUT = pq.ExecStatus.COPY_OUT
_COPY_BOTH = pq.ExecStatus.COPY_BOTH
NO_COPY_IN = ("COPY ... FROM STDIN needs a client to send the data, which a SQL file cannot "
              "be: copy from a file on the server, or use psql's \\copy")


def can_drop_rows() -> bool:
    """Whether the libpq in use has chunked-rows mode (libpq 17 and newer)."""
    return psycopg.capabilities.has_stream_chunked()


def send_counting_rows(conn: psycopg.Connection, sql: str) -> list[int]:
    """Send ``sql`` (one or more statements, simple query protocol) on an autocommit
    connection; the row count of each statement, as ``cursor.rowcount`` gives it
    (-1 for a statement without one). An error is raised as psycopg raises it, with its
    diagnostics (SQLSTATE, position)."""
    pgconn = conn.pgconn
    counts: list[int] = []
    error: psycopg.Error | None = None
    with conn.lock:
        pgconn.send_query(sql.encode(conn.info.encoding))
        pgconn.set_chunked_rows_mode(CHUNK_ROWS)
        conn.wait(generators.send(pgconn))
        # Every result is read up to the end, even after an error, so the connection is
        # left ready for the next query.
        received = 0  # rows of the current statement's chunks so far
        while (result := conn.wait(generators.fetch(pgconn))) is not None:
            status = result.status
            if status == _CHUNK:
                received += result.ntuples
                continue
            if status == _COPY_OUT:
                conn.wait(_drop_copy_data(pgconn))  # its count comes with the next result
                continue
            if status == _COPY_IN:
                # Ending the COPY with an error fails the file on the server and rolls it
                # back; this error is the one to report.
                error = error or psycopg.ProgrammingError(NO_COPY_IN)
                pgconn.put_copy_end(NO_COPY_IN.encode())
                conn.wait(generators.send(pgconn))
                continue
            if status == _COPY_BOTH:
                conn.close()  # replication: nothing else can be done on the connection
                raise psycopg.ProgrammingError("a replication COPY cannot run from a SQL file")
            if status in _FAILED:
                if error is None:
                    error = errors.error_from_result(result, encoding=conn.info.encoding)
                continue
            if status == _TUPLES:
                # the rows returned, as the cursor counts them (EXPLAIN and SHOW have no
                # count in their tag)
                counts.append(received + result.ntuples)
            else:
                rows = result.command_tuples
                counts.append(rows if rows is not None else -1)
            received = 0
    if error is not None:
        raise error
    return counts


def _drop_copy_data(pgconn: pq.abc.PGconn) -> PQGen[None]:
    """Read a ``COPY ... TO STDOUT`` to its end and drop it, waiting on the socket through
    ``conn.wait`` (a blocking read would hold the GIL: no timeout or cancel could run)."""
    while True:
        size = pgconn.get_copy_data(1)[0]
        if size > 0:
            continue
        if size < 0:  # the end, or an error, which comes as the next result
            return
        while not (yield Wait.R):
            continue
        pgconn.consume_input()
