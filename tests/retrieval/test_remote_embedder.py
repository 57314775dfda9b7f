"""The embedding service (`python -m api.embedder_service`, a real process on a Unix socket,
with the fake embedder unless a test says otherwise) and its client `RemoteEmbedder`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rca.config import RetrievalSettings, Settings
from rca.domain import Postmortem
from rca.store import Store
from rca.testing import FakeEmbedder
from retrieval.remote_embedder import MAX_REQUEST_BYTES, EmbedderUnavailable, RemoteEmbedder
from retrieval.service import open_retrieval
from tests.factories import postmortem_data

ROOT = Path(__file__).parents[2]
RCA = Path(sys.executable).parent / "rca"


@contextmanager
def embedding_service(socket: Path, embedder: str = "fake") -> Iterator[subprocess.Popen[bytes]]:
    """The service on `socket`, once it answers; stopped (and checked gone) afterwards."""
    env = {
        **os.environ,
        "RCA_RETRIEVAL__EMBEDDER": embedder,
        "RCA_API__WARM_UP": "false",
        "RCA_DATA_DIR": str(socket.parent / "data"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api.embedder_service", "--socket", str(socket)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        with _client(socket) as client:
            while True:
                assert process.poll() is None, process.stderr and process.stderr.read().decode()
                assert time.monotonic() < deadline, "the embedding service did not start"
                try:
                    if socket.exists() and client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(30)
        if process.stderr is not None:
            process.stderr.close()
    assert not socket.exists(), "the service removes its socket when it stops"


def _client(socket: Path) -> httpx.Client:
    transport = httpx.HTTPTransport(uds=str(socket))
    return httpx.Client(base_url="http://embedder", transport=transport, timeout=60)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Path]:
    socket = tmp_path / "e.sock"
    with embedding_service(socket):
        yield socket


TEXTS = [f"disk {i} filled up on the primary database host, writes failed" for i in range(40)]


def test_vectors_from_the_service_equal_those_made_in_process(service: Path) -> None:
    remote = RemoteEmbedder(str(service), batch_size=16)  # 40 texts: three requests
    local = FakeEmbedder()
    try:
        assert (remote.model_id, remote.dimension) == (local.model_id, local.dimension)
        assert remote.embed(TEXTS, "document") == local.embed(TEXTS, "document")
        assert remote.embed(TEXTS[:1], "query") == local.embed(TEXTS[:1], "query")
        assert remote.embed([], "document") == []
        assert os.stat(service).st_mode & 0o777 == 0o600  # only this user may connect
    finally:
        remote.close()


def test_a_unix_url_and_an_http_url_are_understood(tmp_path: Path) -> None:
    with embedding_service(tmp_path / "e.sock"):
        remote = RemoteEmbedder(f"unix:{tmp_path / 'e.sock'}")
        assert remote.embed(["x y"], "document") == FakeEmbedder().embed(["x y"], "document")
        remote.close()


def test_query_vectors_are_remembered_while_the_service_is_gone(tmp_path: Path) -> None:
    socket = tmp_path / "e.sock"
    with embedding_service(socket):
        remote = RemoteEmbedder(str(socket))
        first = remote.embed(["payments are timing out"], "query")
    # Stopped: the remembered query needs no service; anything else fails clearly, and fast.
    assert remote.embed(["payments are timing out"], "query") == first
    started = time.monotonic()
    with pytest.raises(EmbedderUnavailable) as failed:
        remote.embed(["something new"], "query")
    assert time.monotonic() - started < 10
    assert f"the embedding service at {socket} is not answering" in str(failed.value)
    assert "start `rca embedder serve`" in str(failed.value)
    assert "unset RCA_RETRIEVAL__EMBEDDER" in str(failed.value)
    started = time.monotonic()
    with pytest.raises(EmbedderUnavailable):  # just found down: no retrying this time
        remote.embed(["something else"], "query")
    assert time.monotonic() - started < 1
    remote.close()


def test_no_service_at_all_is_a_clear_error(tmp_path: Path) -> None:
    remote = RemoteEmbedder(str(tmp_path / "nobody.sock"), open_wait_s=0.5)
    with pytest.raises(EmbedderUnavailable, match=r"is not answering.*rca embedder serve"):
        _ = remote.model_id
    remote = RemoteEmbedder("http://127.0.0.1:9", open_wait_s=0.5)  # discard: nobody listens
    with pytest.raises(EmbedderUnavailable, match=r"127\.0\.0\.1:9 is not answering"):
        _ = remote.dimension


def test_search_answers_lexically_while_the_service_is_down(tmp_path: Path) -> None:
    socket = tmp_path / "e.sock"
    settings = Settings(
        data_dir=tmp_path / "data",
        retrieval=RetrievalSettings(embedder="remote", embedder_url=str(socket)),
    )
    store = Store.open(settings)
    try:
        store.save([Postmortem.model_validate(postmortem_data())], source="test")
        with embedding_service(socket):
            retrieval = open_retrieval(settings, store)
            retrieval.indexer.sync()
            found = retrieval.search.search("consumer lag on the notifications queue", k=3)
            assert found.hits and not found.degraded
        found = retrieval.search.search("notifications queue backlog after the deploy", k=3)
        assert found.hits[0].postmortem_id == "pm-test-queue-2025"
        assert found.degraded
        assert any("embedding service" in note and "not answering" in note for note in found.notes)
        assert not any("rca index rebuild" in note for note in found.notes)  # nothing to repair
        retrieval.close()
    finally:
        store.close()


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_bad_requests_are_refused_with_problems(service: Path) -> None:
    with _client(service) as client:
        post = "/v1/embeddings"
        ok = client.post(post, json={"input": "one text", "input_type": "query"})
        assert ok.status_code == 200 and len(ok.json()["data"]) == 1
        _problem(client.post(post, json={"input": ["x"] * 257}), 413)
        too_big = {"input": ["x" * (MAX_REQUEST_BYTES + 1)]}
        assert "limited to" in str(_problem(client.post(post, json=too_big), 413)["detail"])
        _problem(client.post(post, json={"input": [1, 2]}), 422)
        _problem(client.post(post, json={"input": "x", "input_type": "passage"}), 422)
        _problem(client.post(post, json={"input": "x", "model": "another-model"}), 422)
        _problem(client.post(post, json={"input": "x", "dimensions": 12}), 422)
        _problem(client.post(post, json=["x"]), 422)
        _problem(client.post(post, json={}), 422)
        _problem(client.post(post, content=b"{not json"), 400)
        _problem(client.post(post, content=b"\xff\xfe"), 400)
        _problem(client.get(post), 405)
        _problem(client.get("/v1/nothing"), 404)
        assert client.get("/v1/models").json()["data"] == [
            {"id": "fake-bow", "object": "model", "dimension": 64}
        ]
        # Still serving after all that.
        assert client.post(post, json={"input": ["a", "b"]}).status_code == 200


def test_the_real_model_in_the_service_gives_the_in_process_vectors(tmp_path: Path) -> None:
    from retrieval.embedder import SentenceTransformerEmbedder

    socket = tmp_path / "e.sock"
    with embedding_service(socket, embedder="sentence-transformers"):
        remote = RemoteEmbedder(str(socket), timeout_s=120)
        local = SentenceTransformerEmbedder(int8="queries")
        try:
            assert (remote.model_id, remote.dimension) == ("all-MiniLM-L6-v2", 384)
            assert remote.embed(TEXTS[:3], "document") == local.embed(TEXTS[:3], "document")
            assert remote.embed(TEXTS[:1], "query") == local.embed(TEXTS[:1], "query")
        finally:
            remote.close()
            local.close()


def _rca(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RCA), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_embedder_settings_are_one_clear_line_at_start(tmp_path: Path) -> None:
    data = {"RCA_DATA_DIR": str(tmp_path / "data")}
    done = _rca("serve", RCA_RETRIEVAL__EMBEDDER="remote", RCA_RETRIEVAL__EMBEDDER_URL="e.sock")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "rca: error: bad setting RCA_RETRIEVAL.EMBEDDER_URL: Value error, the embedding "
        "service's URL is http(s)://host:port or a Unix socket's absolute path"
    ]
    done = _rca("worker", RCA_RETRIEVAL__EMBEDDER="remote", **data)
    assert done.returncode == 1
    assert "needs RCA_RETRIEVAL__EMBEDDER_URL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    remote = {"RCA_RETRIEVAL__EMBEDDER": "remote", "RCA_RETRIEVAL__EMBEDDER_URL": "/x.sock"}
    done = _rca("embedder", "serve", "--socket", str(tmp_path / "e.sock"), **data, **remote)
    assert done.returncode == 1
    assert "needs a model of its own" in done.stderr
    (tmp_path / "plain").write_text("not a socket")
    done = _rca("embedder", "serve", "--socket", str(tmp_path / "plain"), **data)
    assert done.returncode == 1
    assert "exists and is not a socket" in done.stderr
    assert (tmp_path / "plain").read_text() == "not a socket"
    done = _rca("embedder", "serve", "--socket", "/tmp/" + "x" * 120, **data)
    assert done.returncode == 1
    assert "longer than 107 bytes" in done.stderr


def test_a_second_service_on_a_socket_in_use_is_refused(service: Path) -> None:
    done = _rca("embedder", "serve", "--socket", str(service), RCA_RETRIEVAL__EMBEDDER="fake")
    assert done.returncode == 1
    assert f"another process listens on {service}" in done.stderr
    with _client(service) as client:  # the first still serves
        assert client.get("/healthz").status_code == 200


def test_closing_the_service_stops_its_threads_and_the_model_thread() -> None:
    """What `serve` does when uvicorn has stopped: no request thread takes more work, and an
    embedder with a model thread of its own is closed too."""
    from api.embedder_service import EmbeddingService

    class Closable(FakeEmbedder):
        closed = 0

        def close(self) -> None:
            self.closed += 1

    embedder = Closable()
    service = EmbeddingService(embedder)
    assert service._calls.submit(lambda: 1).result() == 1
    service.close()
    assert embedder.closed == 1
    with pytest.raises(RuntimeError, match="shutdown"):
        service._calls.submit(lambda: 1)
    EmbeddingService(FakeEmbedder()).close()  # no close of its own: nothing else to stop
