"""Many producers and consumers: every item arrives exactly once."""

from __future__ import annotations

import random
import time
from collections import Counter

from _queue_support import join_all, start_thread

import rusttorch_queue as rq

PRODUCERS = 8
CONSUMERS = 8
TOTAL = 1_000_000  # the 8 x 8 x 1M, through the Python API


def test_eight_producers_eight_consumers_one_million_items() -> None:
    q: rq.Queue[int] = rq.Queue(256)
    per_producer = TOTAL // PRODUCERS
    received: list[list[int]] = [[] for _ in range(CONSUMERS)]

    def produce(p: int) -> None:
        put = q.put
        for i in range(p * per_producer, (p + 1) * per_producer):
            put(i)

    def produce_timed(p: int) -> None:
        put = q.put
        for i in range(p * per_producer, (p + 1) * per_producer):
            put(i, timeout=60.0)

    def consume(c: int) -> None:
        out = received[c]
        if c % 2:
            out.extend(q)  # iterate until closed and drained
            return
        get = q.get
        while True:
            try:
                out.append(get(timeout=60.0))
            except rq.Closed:
                return

    producers = [start_thread(produce if p % 2 else produce_timed, p) for p in range(PRODUCERS)]
    consumers = [start_thread(consume, c) for c in range(CONSUMERS)]
    join_all(producers, timeout=120)
    q.close()
    join_all(consumers, timeout=120)

    counts = Counter(item for out in received for item in out)
    assert len(counts) == TOTAL, f"{TOTAL - len(counts)} items were lost"
    duplicated = [item for item, n in counts.items() if n > 1]
    assert not duplicated, f"items arrived twice: {duplicated[:10]}"
    # Each producer's items arrive in order at any one consumer (FIFO per producer).
    sample = random.Random(0).sample(range(CONSUMERS), 2)
    for c in sample:
        by_producer: dict[int, list[int]] = {}
        for item in received[c]:
            by_producer.setdefault(item // per_producer, []).append(item)
        for items in by_producer.values():
            assert items == sorted(items)


def test_non_blocking_calls_under_contention_lose_nothing() -> None:
    q: rq.Queue[int] = rq.Queue(8)
    total, threads = 40_000, 4
    per_producer = total // threads
    received: list[list[int]] = [[] for _ in range(threads)]
    producing = [True]

    def produce(p: int) -> None:
        for i in range(p * per_producer, (p + 1) * per_producer):
            while True:
                try:
                    q.put_nowait(i)
                    break
                except rq.Full:
                    time.sleep(0)

    def consume(c: int) -> None:
        while True:
            try:
                received[c].append(q.get_nowait())
            except rq.Empty:
                if not producing[0] and q.empty():
                    return
                time.sleep(0)

    producers = [start_thread(produce, p) for p in range(threads)]
    consumers = [start_thread(consume, c) for c in range(threads)]
    join_all(producers, timeout=120)
    producing[0] = False
    join_all(consumers, timeout=120)
    items = sorted(item for out in received for item in out)
    assert items == list(range(total))
