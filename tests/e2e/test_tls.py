"""Encryption in transit: Mesh end to end over TLS, each hop verified against the test's CA.

The test makes a CA and a certificate for 127.0.0.1 and localhost, starts a private
redis-server that listens only on its TLS port (`--port 0`) and a private Postgres cluster
with ssl=on that accepts only TLS connections (hostssl in its pg_hba.conf), and runs
`mesh serve` against both with the API on HTTPS. A client that trusts the CA creates a
network and sees a task complete; every connection the fleet holds is encrypted; and a
client that trusts another CA is refused by each of the three servers.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import kombu.exceptions
import psycopg
import pytest
import redis
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshcore.adapters import redis_tls
from meshcore.settings import Settings
from meshworkers.app import create_celery
from tests.conftest import DATA_KEYS
from tests.drills.harness import PrivatePostgres
from tests.e2e.server import AUTH, DEV_KEY, MESH, ServeProcess, free_port, poll

pytestmark = pytest.mark.e2e

READY_TIMEOUT = 90


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA every Mesh client is given
    cert: Path  # the servers' certificate, signed by it: SAN IP 127.0.0.1 and DNS localhost
    key: Path
    other_ca: Path  # a CA that signed nothing here


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _make_ca(common_name: str, path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_pki(directory: Path) -> Pki:
    ca_key, ca_cert = _make_ca("Mesh test CA", directory / "ca.crt")
    _make_ca("Some other CA", directory / "other-ca.crt")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, directory / "server.key")
    return Pki(
        ca=directory / "ca.crt",
        cert=directory / "server.crt",
        key=directory / "server.key",
        other_ca=directory / "other-ca.crt",
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def redis_port(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server with no plaintext listener: only its TLS port."""
    port = free_port()
    process = subprocess.Popen(
        [
            *("redis-server", "--port", "0", "--bind", "127.0.0.1", "--tls-port", str(port)),
            *("--tls-cert-file", str(pki.cert), "--tls-key-file", str(pki.key)),
            *("--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "no"),
            *("--save", "", "--appendonly", "no"),
            *("--dir", str(tmp_path_factory.mktemp("redis"))),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, ssl=True, ssl_ca_certs=str(pki.ca), socket_timeout=1)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the TLS redis-server did not start")
        yield port
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def postgres(pki: Pki) -> Iterator[PrivatePostgres]:
    """A private cluster with ssl=on whose pg_hba.conf admits TCP clients only over TLS."""
    # The server runs as postgres: its key must be its own, mode 0600, where it can read it.
    tls_dir = Path(tempfile.mkdtemp(prefix="mesh-tls-pg-"))
    shutil.copy(pki.cert, tls_dir / "server.crt")
    shutil.copy(pki.key, tls_dir / "server.key")
    (tls_dir / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
    )
    for path in (tls_dir, *tls_dir.iterdir()):
        shutil.chown(path, "postgres", "postgres")
    (tls_dir / "server.key").chmod(0o600)
    server = PrivatePostgres(
        options=(
            f"-c ssl=on -c ssl_cert_file={tls_dir}/server.crt "
            f"-c ssl_key_file={tls_dir}/server.key -c hba_file={tls_dir}/pg_hba.conf"
        )
    )
    try:
        server.start()
        yield server
    finally:
        server.remove()
        shutil.rmtree(tls_dir, ignore_errors=True)


def database_url(postgres: PrivatePostgres, ca: Path) -> str:
    return f"{postgres.url}?sslmode=verify-full&sslrootcert={ca}"


@dataclass(frozen=True)
class Fleet:
    base: str  # https://127.0.0.1:PORT
    port: int
    serve: ServeProcess


@pytest.fixture(scope="module")
def fleet(
    pki: Pki,
    redis_port: int,
    postgres: PrivatePostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    env = {
        "MESH_REDIS_URL": f"rediss://127.0.0.1:{redis_port}/0",
        "MESH_REDIS_CA_FILE": str(pki.ca),
        "MESH_DATABASE_URL": database_url(postgres, pki.ca),
        "MESH_TLS_CERT_FILE": str(pki.cert),
        "MESH_TLS_KEY_FILE": str(pki.key),
        "MESH_DATA_KEYS": DATA_KEYS,
        "MESH_AGENT_WORKERS": "1",
        "MESH_LOG_LEVEL": "WARNING",
    }
    serve = ServeProcess(tmp_path_factory.mktemp("serve"), env=env)
    base = f"https://127.0.0.1:{serve.port}"
    try:
        _wait_ready(base, serve, pki.ca)
        yield Fleet(base=base, port=serve.port, serve=serve)
    finally:
        serve.close()


def _wait_ready(base: str, serve: ServeProcess, ca: Path) -> None:
    verify = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if serve.process.poll() is not None:
            raise RuntimeError(f"mesh serve exited; it printed:\n{serve.output[-4000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"mesh serve did not become ready; it printed:\n{serve.output[-4000:]}")


def https_client(fleet: Fleet, ca: Path) -> httpx.Client:
    verify = ssl.create_default_context(cafile=str(ca))
    return httpx.Client(base_url=fleet.base, verify=verify, headers=AUTH, timeout=10)


def test_a_task_completes_over_https_with_redis_and_postgres_on_tls(fleet: Fleet, pki: Pki) -> None:
    with https_client(fleet, pki.ca) as client:
        created = client.post("/api/mesh/networks", json={"name": "over tls"})
        assert created.status_code == 201, created.text
        network_id = created.json()["id"]
        submitted = client.post(
            f"/api/mesh/networks/{network_id}/tasks", json={"description": "Write the email"}
        )
        assert submitted.status_code == 202, submitted.text
        task = poll(client, submitted.headers["Location"], timeout=90)
    assert task["status"] == "completed", task
    assert task["result"]["answer"]
    assert f"Mesh is starting on {fleet.base} " in fleet.serve.output


def test_every_connection_the_fleet_holds_is_encrypted(
    fleet: Fleet, pki: Pki, redis_port: int, postgres: PrivatePostgres
) -> None:
    # The API answers only TLS on its port.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{fleet.port}/healthz", timeout=1)
    # Redis has no plaintext listener (--port 0): every client it has came over TLS, and a
    # plaintext client on its one port gets nowhere.
    with redis.Redis(port=redis_port, ssl=True, ssl_ca_certs=str(pki.ca)) as client:
        assert client.info("clients")["connected_clients"] > 1
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=redis_port, socket_timeout=2).ping()
    # Postgres: every connection of the fleet uses TLS, and a plaintext one is refused.
    url = f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres"
    with psycopg.connect(f"{url} sslmode=verify-full sslrootcert={pki.ca}") as connection:
        rows = connection.execute(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            "WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"
        ).fetchall()
    assert rows and all(ssl_on for (ssl_on,) in rows), rows
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(f"{url} sslmode=disable").close()


def test_mesh_engine_connects_to_postgres_over_tls(pki: Pki, postgres: PrivatePostgres) -> None:
    from meshcore.adapters.sql.engine import create_engine

    engine = create_engine(database_url(postgres, pki.ca))
    try:
        with engine.connect() as connection:
            used = connection.execute(
                sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).scalar_one()
        assert used is True
    finally:
        engine.dispose()


def test_the_cli_submits_over_https_with_its_ca_file(fleet: Fleet, pki: Pki) -> None:
    argv = [str(MESH), "submit", "Write the launch email", "--url", fleet.base]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
    env["MESH_API_KEY"] = DEV_KEY
    trusted = subprocess.run(
        [*argv, "--ca-file", str(pki.ca)], env=env, capture_output=True, text=True, timeout=60
    )
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.startswith("task ")
    refused = subprocess.run(
        [*argv, "--ca-file", str(pki.other_ca)], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    assert "--ca-file" in refused.stderr


def test_a_client_that_trusts_another_ca_is_refused_by_every_server(
    fleet: Fleet, pki: Pki, redis_port: int, postgres: PrivatePostgres
) -> None:
    with (
        https_client(fleet, pki.other_ca) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get("/healthz")
    wrong = Settings(
        redis_url=f"rediss://127.0.0.1:{redis_port}/0",
        redis_ca_file=pki.other_ca,
        database_url=database_url(postgres, pki.other_ca),
    )
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        redis_tls.connect(wrong, socket_timeout=2).ping()
    app = create_celery(wrong)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        app.backend.client.ping()
    with (
        app.connection_for_write() as connection,
        pytest.raises(kombu.exceptions.OperationalError, match="certificate verify failed"),
    ):
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(
            f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres "
            f"sslmode=verify-full sslrootcert={pki.other_ca}"
        ).close()


def test_mesh_clients_that_trust_the_ca_reach_redis(pki: Pki, redis_port: int) -> None:
    right = Settings(redis_url=f"rediss://127.0.0.1:{redis_port}/0", redis_ca_file=pki.ca)
    with redis_tls.connect(right) as client:
        assert client.ping()
    app = create_celery(right)
    assert app.backend.client.ping()
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        assert connection.connected
