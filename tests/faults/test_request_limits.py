"""Hostile bodies (issue 14, item 6), against each of the four services as its composition
root builds it, served by uvicorn in a process of its own (SQLite store, no broker needed
for HTTP):

- a 100 MB chunked body without a token, to a route that needs one, is refused 401
  (problem+json) at once, and the process's RSS does not grow by more than a few MB:
  the credential is checked before the body is read;
- a provider webhook without its signature headers likewise;
- with a valid token (or signature headers), a chunked body past the service's cap, and a
  Content-Length past it, are a 413 problem+json; the cap is `<SERVICE>_MAX_BODY_BYTES`.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contracts.limits import DEFAULT_MAX_BODY_BYTES
from infra.demo import write_credentials
from tests.support.racing import free_port

ROOT = Path(__file__).resolve().parents[2]
HUNDRED_MB = 100 * 1024 * 1024
CHUNK = b"x" * 65536
PLAN = str(uuid.uuid4())
# Per service: a route that needs a bearer token, a credential that has one, and a route
# without a bearer (a provider webhook, or reporting's dashboard login form).
ROUTES = {
    "intake": ("POST", "/referrals", "alkmaar-case-system", None),
    "trajectory": ("POST", "/subscriptions", "agens-provider",
                   f"/providers/agens/trajectories/{uuid.uuid4()}/reports"),
    "coaching": ("POST", f"/plans/{PLAN}/check-ins", "alkmaar-coach",
                 f"/providers/agens/plans/{PLAN}/check-ins"),
    "reporting": ("GET", "/figures", "region-staff", None),
}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    directory = tmp_path_factory.mktemp("limits")
    path, tokens = write_credentials(directory / "config")
    return directory, path, tokens


@pytest.fixture(scope="module", params=sorted(ROUTES))
def service(request, config) -> Iterator[tuple[str, int, subprocess.Popen[bytes], dict[str, str]]]:
    name = request.param
    directory, credentials, tokens = config
    port = free_port()
    env = {**os.environ, "TWEESPOOR_CREDENTIALS_FILE": str(credentials),
           f"{name.upper()}_DATABASE_URL": f"sqlite:///{directory}/{name}.db",
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    log = open(directory / f"{name}.out", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "tests.support.serve_service", name, str(port)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{name} did not start: {(directory / f'{name}.out').read_text()[-2000:]}")
        time.sleep(0.2)
    yield name, port, process, tokens
    process.terminate()
    process.wait(10)
    log.close()


def rss_kib(process: subprocess.Popen[bytes]) -> int:
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def send_chunked(port: int, method: str, path: str, headers: dict[str, str],
                 total: int = HUNDRED_MB, timeout: float = 30,
                 content_type: str = "application/json") -> tuple[int, dict[str, str], bytes, int]:
    """Streams `total` bytes of chunked body until the server answers; (status, headers,
    body, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Transfer-Encoding: chunked",
            f"Content-Type: {content_type}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent, answer, deadline = 0, b"", time.monotonic() + timeout
    frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
    try:
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                break
            if writable:
                try:
                    sock.sendall(frame)
                    sent += len(CHUNK)
                except (BrokenPipeError, ConnectionResetError):
                    break
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer or len(answer) < _expected(answer):
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            answer += data
    finally:
        sock.close()
    head_part, _, body = answer.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1.1"), f"no answer after {sent} bytes: {answer!r}"
    response_headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), response_headers, body, sent


def _expected(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(head) + 4 + int(line.split(":")[1])
    return len(answer)


def is_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict:
    assert status == expected, body[:300]
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == expected
    return problem


def test_100_mb_without_a_token_is_refused_401_before_the_body_is_read(service):
    name, port, process, _ = service
    method, path, _, _ = ROUTES[name]
    before = rss_kib(process)
    started = time.monotonic()
    status, headers, body, sent = send_chunked(port, method, path, {})
    took = time.monotonic() - started
    is_problem(status, headers, body, 401)
    assert headers.get("www-authenticate") == "Bearer"
    assert took < 5, f"{name} took {took:.1f}s to refuse"
    assert sent < HUNDRED_MB  # refused while the client was still sending
    grown = rss_kib(process) - before
    assert grown < 4 * 1024, f"{name} grew by {grown} KiB"


def test_a_wrong_token_is_refused_before_the_body_too(service):
    name, port, process, _ = service
    method, path, _, _ = ROUTES[name]
    status, headers, body, _ = send_chunked(port, method, path, {"Authorization": "Bearer not-a-token"})
    is_problem(status, headers, body, 401)


def test_a_chunked_body_past_the_cap_with_a_valid_token_is_a_413(service):
    name, port, process, tokens = service
    method, path, credential, _ = ROUTES[name]
    before = rss_kib(process)
    if method == "GET":  # reporting's bearer routes take no body: it is never read, nor kept
        status, _, _, sent = send_chunked(port, method, path, {"Authorization": f"Bearer {tokens[credential]}"})
        assert status == 200 and sent < HUNDRED_MB
        assert rss_kib(process) - before < 8 * 1024
        return
    status, headers, body, sent = send_chunked(port, method, path,
                                               {"Authorization": f"Bearer {tokens[credential]}"})
    problem = is_problem(status, headers, body, 413)
    assert problem["title"] == "Body too large"
    assert sent < HUNDRED_MB
    assert rss_kib(process) - before < 8 * 1024


def test_a_content_length_past_the_cap_is_a_413_before_reading(service):
    name, port, _, tokens = service
    method, path, credential, _ = ROUTES[name]
    target = "/dashboard/login" if name == "reporting" else path
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall((f"POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tokens[credential]}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {DEFAULT_MAX_BODY_BYTES + 1}\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer) < _expected(answer):
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    is_problem(int(lines[0].split()[1]), headers, body, 413)


def test_routes_without_a_bearer_are_capped_and_webhooks_need_their_headers_first(service):
    name, port, process, _ = service
    _, _, _, webhook = ROUTES[name]
    if name == "intake":  # every route of intake needs a bearer; an unknown one reads nothing
        before = rss_kib(process)
        status, headers, body, sent = send_chunked(port, "POST", "/nowhere", {})
        is_problem(status, headers, body, 404)
        assert sent < HUNDRED_MB and rss_kib(process) - before < 4 * 1024
        return
    if webhook is None:  # reporting: the dashboard's login form takes no bearer
        status, headers, body, sent = send_chunked(port, "POST", "/dashboard/login", {},
                                                   content_type="application/x-www-form-urlencoded")
        is_problem(status, headers, body, 413)
        assert sent < HUNDRED_MB
        return
    before = rss_kib(process)
    status, headers, body, sent = send_chunked(port, "POST", webhook, {})
    is_problem(status, headers, body, 401)
    assert sent < HUNDRED_MB and rss_kib(process) - before < 4 * 1024
    signed = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())),
              "webhook-signature": "v1,AAAA"}
    status, headers, body, sent = send_chunked(port, "POST", webhook, signed)
    is_problem(status, headers, body, 413)
    assert sent < HUNDRED_MB
