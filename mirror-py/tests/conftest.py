"""Fixtures: Debian's docker-registry on loopback (optionally with htpasswd
auth and TLS from a CA made with the openssl CLI), a helper that pushes small
real images with urllib, and a throttling proxy for slow-copy tests."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import urljoin

import pytest

import regmirror

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_http(url: str, context: Optional[ssl.SSLContext], proc: subprocess.Popen, log: Path) -> None:
    """Waits until `url` answers anything (401 included)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2, context=context).close()
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text()}")


@dataclass
class Certs:
    ca_pem: str
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA and a server certificate for 127.0.0.1, made with openssl."""
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=regmirror test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return Certs((d / "ca.pem").read_text(), d / "ca.pem", d / "server.pem", d / "server.key")


class Registry:
    """A running docker-registry and a minimal push client."""

    def __init__(self, url: str, auth: Optional[tuple[str, str]], context: Optional[ssl.SSLContext]):
        self.url = url
        self.auth = auth
        self.context = context

    def request(self, method: str, url: str, data: Optional[bytes] = None,
                headers: Optional[dict[str, str]] = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(urljoin(self.url, url), data=data, method=method,
                                     headers=dict(headers or {}))
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.context) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {url}: HTTP {e.code}: {e.read()[:500]!r}") from None

    def push_blob(self, repo: str, data: bytes) -> str:
        """Monolithic upload: POST to open, PUT with the digest and the bytes."""
        digest = sha256(data)
        status, headers, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert status == 202, status
        location = headers["location"]
        sep = "&" if "?" in location else "?"
        status, _, _ = self.request("PUT", f"{location}{sep}digest={digest}", data,
                                    {"Content-Type": "application/octet-stream"})
        assert status == 201, status
        return digest

    def push_image(self, repo: str, tag: str, layer_size: int = 2048) -> str:
        """Pushes a one-layer image with random content; returns the manifest
        digest the registry answered with."""
        payload = os.urandom(layer_size)
        tar_bytes = io.BytesIO()
        with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
            info = tarfile.TarInfo("data.bin")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        layer = gzip.compress(tar_bytes.getvalue(), mtime=0)
        config = json.dumps({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(tar_bytes.getvalue())]},
        }).encode()
        layer_digest = self.push_blob(repo, layer)
        config_digest = self.push_blob(repo, config)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": config_digest},
            "layers": [{"mediaType": LAYER_GZIP, "size": len(layer), "digest": layer_digest}],
        }).encode()
        status, headers, _ = self.request("PUT", f"/v2/{repo}/manifests/{tag}", manifest,
                                          {"Content-Type": MANIFEST_V2})
        assert status == 201, status
        assert headers["docker-content-digest"] == sha256(manifest)
        return headers["docker-content-digest"]

    def manifest_digest(self, repo: str, tag: str) -> str:
        """The registry's `Docker-Content-Digest` for a tag (HEAD)."""
        _, headers, _ = self.request("HEAD", f"/v2/{repo}/manifests/{tag}",
                                     headers={"Accept": MANIFEST_V2})
        return headers["docker-content-digest"]


@pytest.fixture
def make_registry(tmp_path: Path, certs: Certs) -> Iterator:
    """Starts docker-registry on a free port: `make_registry(auth=("u", "p"), tls=True)`."""
    procs: list[subprocess.Popen] = []

    def start(auth: Optional[tuple[str, str]] = None, tls: bool = False) -> Registry:
        n = len(procs)
        root = tmp_path / f"registry{n}"
        root.mkdir()
        port = free_port()
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {root / 'storage'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{port}",
        ]
        if tls:
            lines += ["  tls:", f"    certificate: {certs.cert_file}", f"    key: {certs.key_file}"]
        if auth:
            htpasswd = subprocess.run(["htpasswd", "-Bbn", auth[0], auth[1]], check=True,
                                      capture_output=True, text=True).stdout
            (root / "htpasswd").write_text(htpasswd)
            lines += ["auth:", "  htpasswd:", "    realm: regmirror-test",
                      f"    path: {root / 'htpasswd'}"]
        config = root / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        log = root / "registry.log"
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log.open("w"),
                                stderr=subprocess.STDOUT)
        procs.append(proc)
        scheme = "https" if tls else "http"
        context = ssl.create_default_context(cafile=str(certs.ca_file)) if tls else None
        url = f"{scheme}://127.0.0.1:{port}"
        wait_http(f"{url}/v2/", context, proc, log)
        return Registry(url, auth, context)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def registry(make_registry) -> Registry:
    """An anonymous plain-HTTP registry."""
    return make_registry()


@pytest.fixture
def mirror(tmp_path: Path) -> regmirror.Mirror:
    return regmirror.Mirror(tmp_path / "data")


class _SlowProxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    upstream: str
    rate: int


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Forwards GET/HEAD to the registry and sends bodies at `rate` bytes/s."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _forward(self) -> None:
        server: _SlowProxy = self.server  # type: ignore[assignment]
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("accept", "range", "authorization")}
        req = urllib.request.Request(server.upstream + self.path, method=self.command, headers=headers)
        try:
            resp = urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as e:
            resp = e
        body = resp.read() if self.command != "HEAD" else b""
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        for k, v in resp.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        length = resp.headers.get("Content-Length")
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(body)))
        self.end_headers()
        chunk = max(1, server.rate // 20)
        try:
            for i in range(0, len(body), chunk):
                self.wfile.write(body[i:i + chunk])
                self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = _forward
    do_HEAD = _forward


@pytest.fixture
def slow_proxy(registry: Registry) -> Iterator:
    """`slow_proxy(rate)` -> URL of a proxy in front of `registry` that sends
    bodies at `rate` bytes per second (for tests that need a copy in flight)."""
    servers: list[_SlowProxy] = []

    def start(rate: int) -> str:
        server = _SlowProxy(("127.0.0.1", 0), _SlowHandler)
        server.upstream = registry.url
        server.rate = rate
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
