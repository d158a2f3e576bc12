"""Hot swap and graceful shutdown of a real server following a registry alias, under concurrent real HTTP load."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from searchtune.registry import ModelRegistry
from searchtune.serve.process import start_server_process

QUERY = "vitamin d and fractures"
DOCS = [f"document {i} about bone density, vitamin d and the risk of fractures in trial {i}" for i in range(8)]


def wait_for_version(url: str, version: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]["version"] == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"server did not switch to version {version} within {timeout}s")


def test_promote_swaps_under_load_with_zero_failed_requests(cross_encoder_dir, cross_encoder_dir_b, serve_home,
                                                             tmp_path) -> None:
    from searchtune.scoring import load_scorer

    store = tmp_path / "store"
    registry = ModelRegistry(str(store))
    registry.register("reranker", cross_encoder_dir)
    registry.register("reranker", cross_encoder_dir_b)
    registry.promote("reranker", 1, "prod")
    expected = {v: load_scorer(d, precision="fp32", device="cpu", max_length=128).score(QUERY, DOCS)
                for v, d in ((1, cross_encoder_dir), (2, cross_encoder_dir_b))}
    assert max(abs(a - b) for a, b in zip(expected[1], expected[2])) > 1e-3  # the two versions are tellable apart

    server = start_server_process("reranker@prod", backend="torch",
                                  env={"SEARCHTUNE_HOME": str(serve_home), "SEARCHTUNE_STORE": str(store)},
                                  extra_args=["--max-length", "128", "--precision", "fp32", "--poll-interval", "0.3"])
    failures: list[str] = []
    seen_versions: list[int] = []
    stop = threading.Event()
    done = [0]
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for _ in range(400):  # bounded loop; the stop event normally ends it much earlier
                if stop.is_set():
                    return
                try:
                    response = client.post("/rerank", json={"query": QUERY, "texts": DOCS})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    continue
                scores = {r["index"]: r["score"] for r in response.json()}
                got = [scores[i] for i in range(len(DOCS))]
                match = [v for v, exp in expected.items() if got == pytest.approx(exp, abs=1e-4)]
                if len(match) != 1:
                    failures.append(f"scores match no version: {got[:3]}")
                    continue
                with lock:
                    seen_versions.append(match[0])
                    done[0] += 1

    threads = [threading.Thread(target=load) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while done[0] < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        registry.promote("reranker", 2, "prod")
        wait_for_version(server.url, 2)
        at_switch = done[0]
        while done[0] < at_switch + 4 and time.monotonic() < deadline + 60:
            time.sleep(0.05)
        assert registry.rollback("reranker", "prod") == 1
        wait_for_version(server.url, 1)
        at_rollback = done[0]
        while done[0] < at_rollback + 4 and time.monotonic() < deadline + 90:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(120)

    try:
        assert failures == []
        assert seen_versions[0] == 1 and 2 in seen_versions and seen_versions[-1] == 1
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert 'searchtune_model_swaps_total{outcome="ok"} 2.0' in metrics

        # Graceful shutdown: a request in flight when SIGTERM arrives still gets its full answer.
        result: dict = {}

        def slow_request() -> None:
            many = [f"{d} {' '.join(['extra'] * 60)}" for d in DOCS] * 12  # 96 long pairs
            result["response"] = httpx.post(f"{server.url}/rerank", json={"query": QUERY, "texts": many}, timeout=120)

        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(0.5)
        server.stop(timeout=120)
        worker.join(120)
        assert result["response"].status_code == 200 and len(result["response"].json()) == 96
        assert server.process.returncode in (0, -15)
    finally:
        server.stop()
