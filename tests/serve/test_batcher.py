"""The dynamic batcher in-process with a real asyncio loop. The "model" is a plain function that records the
batches it receives, so the tests can see merging, sorting and bounds (the real models are tested over HTTP)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from searchtune.serve.batcher import DynamicBatcher


def make(max_inputs: int = 8, max_tokens: int = 10_000, wait: float = 0.01, fail_on: str | None = None):
    seen: list[list[str]] = []
    lock = threading.Lock()

    def run(units: list[str]) -> list[int]:
        with lock:
            seen.append(list(units))
        if fail_on and fail_on in units:
            raise ValueError("model failed")
        return [len(u) for u in units]

    return DynamicBatcher(run, len, max_length=20, max_batch_inputs=max_inputs, max_batch_tokens=max_tokens,
                          max_wait_s=wait), seen


def test_concurrent_requests_are_merged_sorted_and_bounded() -> None:
    async def main():
        batcher, seen = make(max_inputs=8, max_tokens=60)
        batcher.start()
        requests = [[f"{'x' * (i + j)}" for j in range(1, 4)] for i in range(6)]
        results = await asyncio.gather(*(batcher.submit(r) for r in requests))
        await batcher.close()
        return requests, results, seen

    requests, results, seen = asyncio.run(main())
    for request, out in zip(requests, results):
        assert out == [len(u) for u in request]
    assert sum(len(b) for b in seen) == 18
    assert len(seen) < 6  # merged across callers
    for batch in seen:
        lengths = [min(len(u), 20) for u in batch]
        assert lengths == sorted(lengths, reverse=True)  # sorted by length
        assert len(batch) <= 8 and lengths[0] * len(batch) <= 60  # bounded by inputs and padded tokens


def test_truncated_lengths_bound_batches() -> None:
    async def main():
        batcher, seen = make(max_inputs=64, max_tokens=40)
        batcher.start()
        out = await batcher.submit(["y" * 100, "y" * 100, "z"])
        await batcher.close()
        return out, seen

    out, seen = asyncio.run(main())
    assert out == [100, 100, 1]
    assert [len(b) for b in seen] == [2, 1]  # 2 x min(100, 20) = 40 tokens fits, a third does not


def test_a_failing_batch_fails_only_its_callers() -> None:
    async def main():
        batcher, _ = make(max_inputs=1, wait=0, fail_on="boom")
        batcher.start()
        ok, bad = await asyncio.gather(batcher.submit(["fine"]), batcher.submit(["boom"]), return_exceptions=True)
        await batcher.close()
        return ok, bad

    ok, bad = asyncio.run(main())
    assert ok == [4]
    assert isinstance(bad, ValueError)


def test_cancelled_requests_are_skipped_and_close_drains() -> None:
    async def main():
        batcher, seen = make(max_inputs=4, wait=0.05)
        batcher.start()
        task = asyncio.create_task(batcher.submit(["gone"]))
        await asyncio.sleep(0)
        task.cancel()
        kept = asyncio.create_task(batcher.submit(["kept"]))
        await asyncio.sleep(0)  # let it enqueue
        await batcher.close()  # finishes what is queued
        return await kept, seen

    out, seen = asyncio.run(main())
    assert out == [4]
    assert ["gone"] not in seen and any("kept" in b for b in seen)
    with pytest.raises(RuntimeError):
        asyncio.run(_submit_after_close())


def test_a_request_that_times_out_stops_costing_model_time() -> None:
    """Its inputs still queued behind the batch that is running are dropped, not computed for nobody."""
    async def main():
        batcher, seen = make(max_inputs=2, wait=0)
        slow = batcher._run

        def run(units):
            time.sleep(0.05)
            return slow(units)

        batcher._run = run
        batcher.start()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit([f"doc{i}" for i in range(20)]), 0.08)
        after = await batcher.submit(["next"])
        await batcher.close()
        return after, seen

    after, seen = asyncio.run(main())
    assert after == [4]
    assert sum(len(b) for b in seen) < 10  # 20 inputs were queued; most were dropped once the caller was gone


async def _submit_after_close():
    batcher, _ = make()
    batcher.start()
    await batcher.close()
    await batcher.submit(["late"])


def test_the_worker_waits_only_for_requests_on_their_way() -> None:
    """A lone query embedding must not sit out ``max_wait_s``; a request still tokenizing is worth waiting for."""
    async def main():
        batcher, seen = make(max_inputs=8, wait=0.2)
        batcher.start()
        alone = asyncio.create_task(batcher.submit(["a"]))
        await asyncio.sleep(0.05)  # the worker did not wait for company nobody announced: "a" ran alone
        late = await batcher.submit(["b"])
        with batcher.expecting():  # e.g. a large request tokenizing in a thread
            first = asyncio.create_task(batcher.submit(["c"]))
            await asyncio.sleep(0.05)
            second = asyncio.create_task(batcher.submit(["d"]))
        await asyncio.gather(alone, first, second)
        await batcher.close()
        return late, seen

    late, seen = asyncio.run(main())
    assert late == [1]
    assert seen[0] == ["a"] and seen[1] == ["b"]
    assert sorted(seen[2]) == ["c", "d"], "the worker should have waited for the announced request"
