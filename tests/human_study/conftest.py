"""Fixtures of the study tests: real Fashion-MNIST images, real SQLite / PostgreSQL databases,
a real uvicorn server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from studyutil import ChatServer, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="session")
def fmnist_test():
    from robustscale.data.datasets import load_dataset

    x, y = load_dataset("fashion-mnist", "test")
    return x[:500], y[:500]


@pytest.fixture
def sessions(tmp_path):
    from robustscale.human_study.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'study.db'}"))


@pytest.fixture
def chat_server():
    """`chat_server(classes, **kw)` starts a loopback `studyutil.ChatServer`, stopped after the
    test."""
    def start(classes, **kw):
        srv = ChatServer(classes, **kw)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    servers = []
    yield start
    for srv in servers:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL 15 cluster owned by `postgres`, on a unix socket in a temp dir."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL binaries absent (/usr/lib/postgresql/15/bin)")
    root = Path(tempfile.mkdtemp(prefix="rs-pg-"))
    as_pg = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()
    subprocess.run(as_pg + [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    opts = f"-c listen_addresses='' -c unix_socket_directories={root} -p {port} -c max_connections=200"
    subprocess.run(as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                            str(root / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
