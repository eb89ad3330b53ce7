"""rusttorch_queue against the standard library's queues and against unbatched inference.

1. Queue throughput: items per second through a bounded queue (maxsize 1024) with 1, 4 and
   8 producer threads and as many consumers, rusttorch_queue.Queue against queue.Queue and
   queue.SimpleQueue (unbounded, C-implemented, no timeouts on put), same Python loops.
2. Dynamic batching: 16 client threads send single requests (256 floats) to an MLP
   (Linear 256->1024, GELU, Linear 1024->256; torch.set_num_threads(2), inference_mode):
   throughput and p50/p99 latency of per-request calls, of a Batcher, and the ideal
   throughput of calling the model on pre-stacked batches of 64 from one thread.

Candidates are interleaved round by round after a warm-up; medians are reported.
Goals (issue 6): queue >= 2x queue.Queue; batcher >= 15x per-request and >= 50% of the
ideal, with p99 <= max_wait + 2x one batch's compute time.

    python benchmarks/queue_batcher.py [--rounds N] [--items N] [--threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Python puts this script's directory first on sys.path. Take it off while the standard
# library's `queue` (which this file and torch import) is imported, so that nothing in
# benchmarks/ can shadow it (the reason this file is not called queue.py), then put it back
# for `_harness`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
import queue  # noqa: E402

sys.path.insert(0, str(_HERE))

import argparse  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from _harness import Case, format_seconds, machine_info, report, run_group, save  # noqa: E402

import rusttorch_queue as rq  # noqa: E402

QUEUE_MAXSIZE = 1024
CLIENTS = 16
IDEAL_BATCH = 64


# --- 1. queue throughput --------------------------------------------------------------------


def transfer(make: Callable[[], Any], threads: int, items: int) -> None:
    """Moves `items` ints from `threads` producers to `threads` consumers through one queue;
    each consumer stops at a None sentinel, sent after every producer finished."""
    q = make()
    per_producer = items // threads

    def produce() -> None:
        put = q.put
        for i in range(per_producer):
            put(i)

    def consume() -> None:
        get = q.get
        while get() is not None:
            pass

    producers = [threading.Thread(target=produce) for _ in range(threads)]
    consumers = [threading.Thread(target=consume) for _ in range(threads)]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join()
    for _ in range(threads):
        q.put(None)
    for t in consumers:
        t.join()


def uncontended_cases(calls: int) -> list[Case]:
    """One thread, a put then a get: the cost of the calls themselves."""
    cases = []
    for name, q in [
        ("rusttorch_queue.Queue(1024)", rq.Queue(QUEUE_MAXSIZE)),
        ("queue.Queue(1024)", queue.Queue(QUEUE_MAXSIZE)),
        ("queue.SimpleQueue()  [unbounded]", queue.SimpleQueue()),
    ]:
        put, get = q.put, q.get
        cases.append(Case(name, lambda put=put, get=get: (put(1), get()), calls))
    return cases


def queue_benchmark(rounds: int, items: int) -> list[dict[str, Any]]:
    cases = run_group(uncontended_cases(20_000), rounds=rounds)
    rows = report("Queue: put + get from one thread (no waiting)", cases, "queue.Queue(1024)")
    for row in rows:
        row["threads"] = 0
    for threads in (1, 4, 8):
        cases = [
            Case(
                "rusttorch_queue.Queue(1024)",
                lambda n=threads: transfer(lambda: rq.Queue(QUEUE_MAXSIZE), n, items),
            ),
            Case(
                "queue.Queue(1024)",
                lambda n=threads: transfer(lambda: queue.Queue(QUEUE_MAXSIZE), n, items),
            ),
            Case(
                "queue.SimpleQueue()  [unbounded]",
                lambda n=threads: transfer(queue.SimpleQueue, n, items),
            ),
        ]
        run_group(cases, rounds=rounds, warmup_rounds=1)
        title = f"Queue: {items} items, {threads} producers x {threads} consumers"
        for row in report(title, cases, "queue.Queue(1024)"):
            row["threads"] = threads
            row["items_per_s"] = items / row["median_s"]
            rows.append(row)
        for case in cases:
            print(f"    {case.name:<44} {items / case.median_s / 1e6:8.2f} M items/s")
    return rows


# --- 2. dynamic batching --------------------------------------------------------------------


@dataclass
class Serving:
    """One way of serving requests, measured over rounds."""

    name: str
    run: Callable[[], tuple[int, float, list[float]]]  # -> requests, seconds, latencies
    throughputs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def measure(self, keep: bool) -> None:
        requests, seconds, latencies = self.run()
        if keep:
            self.throughputs.append(requests / seconds)
            self.latencies.extend(latencies)

    @property
    def throughput(self) -> float:
        return statistics.median(self.throughputs)

    def latency(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_clients(
    call: Callable[[torch.Tensor], Any], inputs: torch.Tensor, per_client: int
) -> tuple[int, float, list[float]]:
    """CLIENTS threads each send `per_client` single requests through `call`, timed."""
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    start_line = threading.Barrier(CLIENTS + 1)

    def client(c: int) -> None:
        mine = latencies[c]
        rows = [inputs[(c * per_client + i) % len(inputs)] for i in range(per_client)]
        start_line.wait()
        for x in rows:
            t0 = time.perf_counter()
            call(x)
            mine.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    return CLIENTS * per_client, seconds, [x for mine in latencies for x in mine]


def in_thread(fn: Callable[[], Any]) -> Any:
    """Runs fn on a new thread that then exits, and returns its result.

    Every torch call here runs on a thread that exits afterwards (client threads, a
    Batcher's worker, or this): libgomp, behind torch's CPU parallelism, stops spin-waiting
    once it manages more threads than there are cores, and every thread that ever ran a
    parallel torch op keeps its team of OpenMP threads until it exits. A long-lived second
    torch thread makes every op in the process slower on a small machine (measured below as
    "ideal with a second torch thread alive"), whichever candidate ran first.
    """
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def batch_compute_seconds(fn: Callable[[torch.Tensor], Any], batch: torch.Tensor) -> float:
    """Median time of one call of fn on `batch`, from one thread."""
    for _ in range(10):
        fn(batch)
    samples = []
    for _ in range(50):
        t0 = time.perf_counter()
        fn(batch)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def batching_benchmark(rounds: int) -> dict[str, Any]:
    def setup() -> tuple[torch.nn.Module, torch.Tensor]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(256, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 256)
        ).eval()
        return model, torch.randn(8192, 256)

    model, inputs = in_thread(setup)

    @torch.inference_mode()
    def infer(batch: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model(batch)
        return out

    configs = [
        # With 16 synchronous clients at most 16 requests are in flight: a batch of 16 is
        # full, and goes at once. The defaults (32) never fill, so every batch waits 2 ms.
        {"max_batch_size": 16, "max_wait_ms": 2.0},
        {"max_batch_size": 32, "max_wait_ms": 2.0},
    ]
    ideal_batch = inputs[:IDEAL_BATCH]
    ideal_calls = 100
    round_stats: list[list[rq.BatcherStats]] = [[] for _ in configs]

    def ideal() -> tuple[int, float, list[float]]:
        for _ in range(5):
            infer(ideal_batch)
        t0 = time.perf_counter()
        for _ in range(ideal_calls):
            infer(ideal_batch)
        return IDEAL_BATCH * ideal_calls, time.perf_counter() - t0, []

    def served(
        config: dict[str, float], per_client: int, via_future: bool, stats: list[Any] | None
    ) -> tuple[int, float, list[float]]:
        """A fresh Batcher per round (its worker, the only torch thread, exits at close)."""
        with rq.Batcher(infer, **config) as batcher:  # type: ignore[arg-type]
            call = (lambda x: batcher.submit(x).result()) if via_future else batcher
            run_clients(call, inputs, 5)  # warm-up
            batcher.reset_stats()
            result = run_clients(call, inputs, per_client)
            if stats is not None:
                stats.append(batcher.stats)
        return result

    servings = [
        Serving("per-request calls", lambda: run_clients(infer, inputs, 40)),
        *(
            Serving(
                "Batcher(max_batch_size={max_batch_size}, max_wait_ms={max_wait_ms})".format(**cfg),
                lambda cfg=cfg, st=st: served(
                    cfg, 400 if cfg["max_batch_size"] <= 16 else 100, False, st
                ),
            )
            for cfg, st in zip(configs, round_stats, strict=True)
        ),
        Serving(
            "Batcher(16, 2.0) via submit().result()",
            lambda: served(configs[0], 400, True, None),
        ),
        Serving(f"ideal: pre-stacked batches of {IDEAL_BATCH}, 1 thread", lambda: in_thread(ideal)),
    ]
    for r in range(rounds + 1):
        for serving in servings:
            serving.measure(keep=r > 0)
    del round_stats[0][:1], round_stats[1][:1]  # the warm-up round

    # The libgomp effect described in `in_thread`, measured.
    parked = threading.Event()
    second = threading.Thread(target=lambda: (infer(ideal_batch), parked.wait()))
    second.start()
    time.sleep(0.2)
    contended_runs = [in_thread(ideal) for _ in range(3)]
    contended = statistics.median(n / seconds for n, seconds, _ in contended_runs)
    parked.set()
    second.join()

    compute = {
        n: in_thread(lambda n=n: batch_compute_seconds(infer, inputs[:n]))
        for n in (16, 32, IDEAL_BATCH)
    }
    per_request = servings[0].throughput
    ideal_throughput = servings[-1].throughput
    print(
        f"\nBatching: {CLIENTS} client threads, MLP 256->1024->256, "
        f"{torch.get_num_threads()} torch threads"
    )
    print(
        f"  {'serving':<46} {'req/s':>9} {'vs per-req':>10} {'vs ideal':>9} {'p50':>9} {'p99':>9}"
    )
    rows = []
    for s in servings:
        has_latency = bool(s.latencies)
        p50, p99 = s.latency(0.5), s.latency(0.99)
        print(
            f"  {s.name:<46} {s.throughput:9.0f} {s.throughput / per_request:9.1f}x "
            f"{s.throughput / ideal_throughput:8.0%} "
            f"{format_seconds(p50) if has_latency else '-':>9} "
            f"{format_seconds(p99) if has_latency else '-':>9}"
        )
        rows.append(
            {
                "serving": s.name,
                "throughput_rps": s.throughput,
                "throughput_samples": s.throughputs,
                "vs_per_request": s.throughput / per_request,
                "vs_ideal": s.throughput / ideal_throughput,
                "latency_p50_s": p50 if has_latency else None,
                "latency_p99_s": p99 if has_latency else None,
            }
        )
    print(
        "  one batch's compute time (1 thread): "
        + ", ".join(f"{n}: {format_seconds(t)}" for n, t in compute.items())
    )
    print(
        f"  ideal with a second torch thread alive (libgomp stops spinning): "
        f"{contended:.0f} req/s, {contended / ideal_throughput:.0%} of ideal"
    )
    goals = []
    for serving, cfg, per_round in zip(servings[1:3], configs, round_stats, strict=True):
        st = merge_stats(per_round)
        bound = cfg["max_wait_ms"] / 1e3 + 2 * compute[int(cfg["max_batch_size"])]
        goal = {
            "serving": serving.name,
            "speedup_vs_per_request": serving.throughput / per_request,
            "goal_speedup": 15.0,
            "fraction_of_ideal": serving.throughput / ideal_throughput,
            "goal_fraction_of_ideal": 0.5,
            "latency_p99_s": serving.latency(0.99),
            "goal_latency_p99_s": bound,
            **st,
        }
        goals.append(goal)
        met = lambda ok: "met" if ok else "MISSED"  # noqa: E731
        print(
            f"  {serving.name}: mean batch {st['mean_batch_size'] or 0:.1f}; "
            f"{goal['speedup_vs_per_request']:.1f}x per-request (goal 15x: "
            f"{met(goal['speedup_vs_per_request'] >= 15)}), "
            f"{goal['fraction_of_ideal']:.0%} of ideal (goal 50%: "
            f"{met(goal['fraction_of_ideal'] >= 0.5)}), "
            f"p99 {format_seconds(goal['latency_p99_s'])} "
            f"(goal <= {format_seconds(bound)}: {met(goal['latency_p99_s'] <= bound)})"
        )
    return {
        "clients": CLIENTS,
        "servings": rows,
        "batch_compute_s": {str(n): t for n, t in compute.items()},
        "ideal_with_second_torch_thread_rps": contended,
        "goals": goals,
    }


def merge_stats(per_round: list[rq.BatcherStats]) -> dict[str, Any]:
    """Batch sizes summed over rounds; queue-wait percentiles as the median of the rounds'."""
    histogram: Counter[int] = Counter()
    for st in per_round:
        histogram.update(st.batch_size_histogram)
    requests = sum(st.requests for st in per_round)
    batches = sum(st.batches for st in per_round)
    waits = [(st.queue_wait_p50_ms or 0.0, st.queue_wait_p99_ms or 0.0) for st in per_round]
    return {
        "mean_batch_size": requests / batches if batches else None,
        "batch_size_histogram": dict(sorted(histogram.items())),
        "queue_wait_p50_ms": statistics.median(w[0] for w in waits) if waits else None,
        "queue_wait_p99_ms": statistics.median(w[1] for w in waits) if waits else None,
    }


def round_trip(rounds: int) -> dict[str, Any]:
    """One caller, fn returning its batch, max_batch_size=1: the batcher's own overhead per
    call (submit, worker wake-up, stacking, fn, split, caller wake-up)."""
    x = torch.randn(256)
    samples = []
    with rq.Batcher(lambda batch: batch, max_batch_size=1, max_wait_ms=0) as batcher:
        for _ in range(200):
            batcher(x)
        for _ in range(rounds * 300):
            t0 = time.perf_counter()
            batcher(x)
            samples.append(time.perf_counter() - t0)
    samples.sort()
    p50, p99 = samples[len(samples) // 2], samples[int(0.99 * len(samples))]
    print(
        f"\n  round trip, 1 caller, identity fn: p50 {format_seconds(p50)}, "
        f"p99 {format_seconds(p99)}"
    )
    return {"latency_p50_s": p50, "latency_p99_s": p99}


def gil_floor(rounds: int) -> dict[str, Any]:
    """The cost of the GIL alone: 16 threads that each release and retake it once per
    iteration (what any synchronous client of a worker thread must do), as iterations/s."""
    samples = []
    for _ in range(rounds):
        _, seconds, _ = run_clients(lambda x: time.sleep(0), torch.zeros(1, 1), 400)
        samples.append(CLIENTS * 400 / seconds)
    rate = statistics.median(samples)
    print(f"\n  GIL floor: {CLIENTS} threads doing one GIL release per iteration: {rate:,.0f} it/s")
    return {"threads": CLIENTS, "iterations_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--items", type=int, default=200_000, help="items per queue transfer")
    parser.add_argument("--threads", type=int, default=2, help="torch and rusttorch threads")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rq.set_num_threads(args.threads)

    queue_rows = queue_benchmark(args.rounds, args.items)
    batching = batching_benchmark(args.rounds)
    trip = round_trip(args.rounds)
    floor = gil_floor(args.rounds)

    ours = {
        r["threads"]: r
        for r in queue_rows
        if r["case"].startswith("rusttorch") and r["threads"] > 0
    }
    speedups = {n: row["speedup_vs_baseline"] for n, row in ours.items()}
    print(
        "\nqueue vs queue.Queue: "
        + ", ".join(f"{n}x{n}: {s:.1f}x" for n, s in speedups.items())
        + f" (goal >= 2x: {'met' if min(speedups.values()) >= 2 else 'MISSED'})"
    )
    save(
        "queue",
        {
            "machine": machine_info(args.threads),
            "queue": queue_rows,
            "queue_goal_speedup": 2.0,
            "batching": batching,
            "round_trip": trip,
            "gil_floor": floor,
        },
    )


if __name__ == "__main__":
    main()
