"""Batcher basics: results per caller, stacking, structures, timing, asyncio, statistics."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Any

import pytest
import torch
from _queue_support import Gate, join_all, process_cpu_seconds, start_thread

import rusttorch_queue as rq


def test_call_returns_this_request_row_of_the_output() -> None:
    with rq.Batcher(lambda b: b * 2 + 1) as batcher:
        x = torch.tensor([1.0, 2.0, 3.0])
        assert torch.equal(batcher(x), x * 2 + 1)


def test_submit_returns_a_concurrent_future() -> None:
    with rq.Batcher(lambda b: b.sum(dim=1)) as batcher:
        futures = [batcher.submit(torch.full((4,), float(i))) for i in range(5)]
        assert all(isinstance(f, concurrent.futures.Future) for f in futures)
        assert [f.result(timeout=10).item() for f in futures] == [0.0, 4.0, 8.0, 12.0, 16.0]


def test_requests_are_stacked_along_a_new_dim_0() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=4, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
        inputs = [base + i for i in range(3)]
        inputs.append(base.t().contiguous().t() + 10)  # strided (column-major) input
        inputs.append(torch.arange(12.0, dtype=torch.float64).reshape(4, 3).t())  # a view
        futures = [batcher.submit(x) for x in inputs]
        gate.open()
        results = [f.result(timeout=10) for f in futures]
    first, second = gate.batches[1], gate.batches[2]
    assert first.shape == (4, 3, 4) and first.dtype == torch.float64
    assert first.is_contiguous()
    assert torch.equal(first, torch.stack(inputs[:4]))
    assert torch.equal(second, torch.stack(inputs[4:]))
    for x, r in zip(inputs, results, strict=True):
        assert torch.equal(x, r)


def test_each_result_is_a_view_of_the_batch_output() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=3, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        futures = [batcher.submit(torch.ones(2) * i) for i in range(3)]
        gate.open()
        results = [f.result(timeout=10) for f in futures]
    pointers = {r.untyped_storage().data_ptr() for r in results}
    assert len(pointers) == 1, "the rows should share the output's storage, not be copies"


def test_tuple_requests_give_tuple_batches_and_results() -> None:
    def fn(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = batch
        return a + b, a - b

    with rq.Batcher(fn) as batcher:
        s, d = batcher((torch.tensor([3.0]), torch.tensor([1.0])))
        assert (s.item(), d.item()) == (4.0, 2.0)


def test_dict_requests_give_dict_batches_and_results_whatever_the_key_order() -> None:
    gate = Gate(lambda batch: batch if "x" not in batch else {"sum": batch["x"] + batch["y"]})
    with rq.Batcher(gate, max_batch_size=2, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        f1 = batcher.submit({"x": torch.tensor(1), "y": torch.tensor(2)})
        f2 = batcher.submit({"y": torch.tensor(20), "x": torch.tensor(10)})
        gate.open()
        assert f1.result(timeout=10)["sum"].item() == 3
        assert f2.result(timeout=10)["sum"].item() == 30
    batch = gate.batches[1]
    assert list(batch) == ["x", "y"]  # the first request's key order
    assert batch["x"].tolist() == [1, 10]


def test_list_outputs_give_list_results() -> None:
    with rq.Batcher(lambda b: [b, b * 10]) as batcher:
        result = batcher(torch.tensor([1]))
        assert isinstance(result, list)
        assert [t.item() for t in result] == [1, 10]


def test_a_full_batch_goes_at_once() -> None:
    with rq.Batcher(lambda b: b, max_batch_size=4, max_wait_ms=60_000) as batcher:
        start = time.monotonic()
        futures = [batcher.submit(torch.ones(1)) for _ in range(4)]
        for f in futures:
            f.result(timeout=30)
        assert time.monotonic() - start < 10


def test_a_partial_batch_goes_after_max_wait() -> None:
    with rq.Batcher(lambda b: b, max_batch_size=8, max_wait_ms=150) as batcher:
        start = time.monotonic()
        batcher(torch.ones(1))
        waited = time.monotonic() - start
        assert 0.14 <= waited < 5, waited


def test_the_wait_timer_starts_at_the_first_request_not_when_the_worker_is_free() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=2, max_wait_ms=400) as batcher:
        # A full batch goes at once and holds the worker.
        busy = [batcher.submit(torch.zeros(1)) for _ in range(2)]
        assert gate.entered.wait(10)
        late = batcher.submit(torch.ones(1))
        time.sleep(0.6)  # longer than max_wait: `late` is overdue when the worker frees up
        opened = time.monotonic()
        gate.open()
        for f in busy:
            f.result(timeout=10)
        late.result(timeout=10)
        # Had the timer started when the worker took `late`, it would wait 0.4 s more.
        assert time.monotonic() - opened < 0.3


def test_batches_never_exceed_max_batch_size() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=4, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        futures = [batcher.submit(torch.ones(1) * i) for i in range(10)]
        gate.open()
        assert [f.result(timeout=10).item() for f in futures] == list(range(10))
    assert gate.sizes() == [4, 4, 2]


def test_asubmit_serves_asyncio() -> None:
    async def main(batcher: rq.Batcher) -> list[Any]:
        requests = [batcher.asubmit(torch.tensor([float(i)])) for i in range(6)]
        return list(await asyncio.gather(*requests))

    with rq.Batcher(lambda b: b * 2, max_batch_size=3) as batcher:
        results = asyncio.run(main(batcher))
    assert [r.item() for r in results] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_asubmit_waits_for_room_without_blocking_the_loop() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=1, max_wait_ms=0, max_queue=1) as batcher:
        gate.hold(batcher.submit)
        batcher.submit(torch.ones(1))  # the queue is now full

        async def main() -> tuple[Any, int]:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            tick_task = asyncio.create_task(ticker())
            asyncio.get_running_loop().call_later(0.2, gate.open)
            result = await batcher.asubmit(torch.full((1,), 5.0))
            tick_task.cancel()
            return result, ticks

        result, ticks = asyncio.run(main())
    assert result.item() == 5.0
    assert ticks >= 5, "the event loop was blocked while the queue was full"


def test_properties_and_repr() -> None:
    def model(batch: torch.Tensor) -> torch.Tensor:
        return batch

    batcher = rq.Batcher(model, max_batch_size=8, max_wait_ms=1.5, max_queue=16, timeout_ms=50)
    assert (batcher.max_batch_size, batcher.max_wait_ms, batcher.max_queue) == (8, 1.5, 16)
    assert batcher.timeout_ms == pytest.approx(50.0)
    assert not batcher.closed
    assert repr(batcher).startswith("Batcher(<function")
    assert "max_batch_size=8, max_wait_ms=1.5, max_queue=16, timeout_ms=50" in repr(batcher)
    batcher.close()
    assert batcher.closed
    assert repr(batcher).endswith(", closed)")
    assert rq.Batcher(model).timeout_ms is None


def test_constructor_defaults() -> None:
    with rq.Batcher(lambda b: b) as batcher:
        settings = (batcher.max_batch_size, batcher.max_wait_ms, batcher.max_queue)
        assert settings == (32, 2.0, 1024)
        assert batcher.timeout_ms is None
        assert "max_batch_size=32, max_wait_ms=2.0, max_queue=1024, timeout_ms=None" in repr(
            batcher
        )


def test_cancelling_an_asubmit_await_cancels_the_request() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=4, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)

        async def main() -> Any:
            task = asyncio.create_task(batcher.asubmit(torch.ones(1)))
            await asyncio.sleep(0.05)  # submitted, queued behind the blocker
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The batcher still serves the loop.
            asyncio.get_running_loop().call_later(0.05, gate.open)
            return await batcher.asubmit(torch.full((1,), 7.0))

        assert asyncio.run(main()).item() == 7.0
    assert batcher.stats.cancelled == 1
    assert [b.tolist() for b in gate.batches[1:]] == [[[7.0]]], "the cancelled request ran"


@pytest.mark.parametrize("timeout_ms", [None, 100.0], ids=["no-timeout", "with-expiry-thread"])
def test_an_idle_batcher_uses_no_cpu(timeout_ms: float | None) -> None:
    with rq.Batcher(lambda b: b, max_wait_ms=1, timeout_ms=timeout_ms) as batcher:
        assert batcher(torch.ones(1)).item() == 1.0
        time.sleep(0.05)
        cpu = process_cpu_seconds()
        time.sleep(0.5)
        used = process_cpu_seconds() - cpu
    # A polling worker or expiry thread would use a good part of 0.5 s here.
    assert used < 0.1, f"an idle Batcher used {used:.3f} s of CPU in 0.5 s"


def test_stats_count_batches_sizes_waits_and_throughput() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=4, max_wait_ms=0) as batcher:
        empty = batcher.stats
        assert (empty.requests, empty.batches, empty.mean_batch_size) == (0, 0, None)
        assert empty.queue_wait_p50_ms is None and empty.throughput is None
        gate.hold(batcher.submit)
        futures = [batcher.submit(torch.ones(1)) for _ in range(6)]
        gate.open()
        for f in futures:
            f.result(timeout=10)
        stats = batcher.stats
    assert stats.requests == 7
    assert stats.batches == 3
    assert stats.batch_size_histogram == {1: 1, 4: 1, 2: 1}
    assert stats.mean_batch_size == pytest.approx(7 / 3)
    assert stats.queue_wait_p50_ms is not None and stats.queue_wait_p99_ms is not None
    assert 0 <= stats.queue_wait_p50_ms <= stats.queue_wait_p99_ms
    assert stats.throughput is not None and stats.throughput > 0
    assert (stats.timed_out, stats.rejected, stats.failed, stats.cancelled) == (0, 0, 0, 0)
    d = stats.as_dict()
    assert d["requests"] == 7 and d["batch_size_histogram"] == {1: 1, 4: 1, 2: 1}
    assert repr(stats).startswith("BatcherStats(requests=7, batches=3")
    batcher.reset_stats()
    assert batcher.stats.requests == 0


def test_a_cancelled_future_is_skipped() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=4, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        cancelled = batcher.submit(torch.ones(1))
        kept = batcher.submit(torch.ones(1) * 2)
        assert cancelled.cancel()
        gate.open()
        assert kept.result(timeout=10).item() == 2.0
    assert cancelled.cancelled()
    assert gate.sizes() == [1]
    assert batcher.stats.cancelled == 1


def test_fn_runs_on_one_worker_thread_and_inference_mode_works() -> None:
    threads: set[int] = set()
    linear = torch.nn.Linear(3, 2)

    @torch.inference_mode()
    def fn(batch: torch.Tensor) -> Any:
        threads.add(threading.get_ident())
        return linear(batch)

    with rq.Batcher(fn) as batcher:
        x = torch.ones(3, requires_grad=True)
        results = [batcher(x) for _ in range(3)]
    assert len(threads) == 1 and threading.get_ident() not in threads
    with torch.no_grad():
        expected = linear(torch.ones(3))
    for r in results:
        assert torch.allclose(r, expected)


def test_a_done_callback_may_submit_and_close() -> None:
    follow_up: list[concurrent.futures.Future[Any]] = []
    with rq.Batcher(lambda b: b + 1) as batcher:

        def callback(_: concurrent.futures.Future[Any]) -> None:
            follow_up.append(batcher.submit(torch.zeros(1)))
            batcher.close()

        batcher.submit(torch.zeros(1)).add_done_callback(callback)
        deadline = time.monotonic() + 10
        while not follow_up and time.monotonic() < deadline:
            time.sleep(0.01)
    assert follow_up[0].result(timeout=10).item() == 1.0
    assert batcher.closed


def test_many_threads_calling_at_once_each_get_their_own_row() -> None:
    errors: list[str] = []
    with rq.Batcher(lambda b: b * 3, max_batch_size=16, max_wait_ms=1) as batcher:

        def client(c: int) -> None:
            for i in range(200):
                value = float(c * 1000 + i)
                via_future = i % 2 == 0
                x = torch.tensor([value, -value])
                out = batcher.submit(x).result(timeout=30) if via_future else batcher(x)
                if out.tolist() != [3 * value, -3 * value]:
                    errors.append(f"client {c} call {i}: {out.tolist()}")

        join_all([start_thread(client, c) for c in range(16)], timeout=120)
        assert not errors, errors[:5]
        assert batcher.stats.requests == 16 * 200
