"""rusttorch_queue against the standard library's queues and against unbatched inference.

1. Queue throughput: items per second through a bounded queue (maxsize 1024) with 1, 4 and
   8 producer threads and as many consumers, rusttorch_queue.Queue against queue.Queue and
   queue.SimpleQueue (unbounded, C-implemented, no timeouts on put), same Python loops.
2. Dynamic batching: 16 client threads send single requests (256 floats) to an MLP
   (Linear 256->1024, GELU, Linear 1024->256; torch.set_num_threads(2), inference_mode):
   throughput and p50/p99 latency of per-request calls, of a Batcher, and the ideal
   throughput of calling the model on pre-stacked batches of 64 from one thread; the p99
   also in the steady state (while all 16 clients are active), and the most any batcher can
   give 16 synchronous clients (16-row batches back to back, model only).
3. What the batcher's share is made of: its one-caller round trip, its throughput with 16
   callers and no model, 16 threads doing nothing but GIL hand-offs, and the cost of waking
   a thread on another CPU (a two-thread ping-pong across two CPUs and on one CPU).

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
import os  # noqa: E402
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
    run: Callable[[], Clients]
    throughputs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    steady_latencies: list[float] = field(default_factory=list)

    def measure(self, keep: bool) -> None:
        clients = self.run()
        if keep:
            self.throughputs.append(clients.requests / clients.seconds)
            self.latencies.extend(clients.latencies)
            self.steady_latencies.extend(clients.steady_latencies)

    @property
    def throughput(self) -> float:
        return statistics.median(self.throughputs)

    def latency(self, q: float, *, steady: bool = False) -> float:
        return quantile(self.steady_latencies if steady else self.latencies, q)


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass
class Clients:
    """What one run of the client threads measured."""

    requests: int
    seconds: float
    latencies: list[float]
    # The requests sent while every client was active: issued after the last client's first
    # request and answered before the first client's last answer. A closed-loop run ramps
    # up and down (at the ends fewer than CLIENTS callers are active, and a batcher's batch
    # may wait its whole max_wait for callers that are not coming); this is the
    # steady state between.
    steady_latencies: list[float]


def run_clients(
    call: Callable[[torch.Tensor], Any], inputs: torch.Tensor, per_client: int
) -> Clients:
    """CLIENTS threads each send `per_client` single requests through `call`, timed."""
    spans: list[list[tuple[float, float]]] = [[] for _ in range(CLIENTS)]
    start_line = threading.Barrier(CLIENTS + 1)

    def client(c: int) -> None:
        mine = spans[c]
        rows = [inputs[(c * per_client + i) % len(inputs)] for i in range(per_client)]
        start_line.wait()
        for x in rows:
            t0 = time.perf_counter()
            call(x)
            mine.append((t0, time.perf_counter()))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    all_active_from = max(mine[0][0] for mine in spans)
    all_active_until = min(mine[-1][1] for mine in spans)
    return Clients(
        requests=CLIENTS * per_client,
        seconds=seconds,
        latencies=[end - start for mine in spans for start, end in mine],
        steady_latencies=[
            end - start
            for mine in spans
            for start, end in mine
            if start >= all_active_from and end <= all_active_until
        ],
    )


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

    def ideal() -> Clients:
        for _ in range(5):
            infer(ideal_batch)
        t0 = time.perf_counter()
        for _ in range(ideal_calls):
            infer(ideal_batch)
        return Clients(IDEAL_BATCH * ideal_calls, time.perf_counter() - t0, [], [])

    def served(
        config: dict[str, float], per_client: int, via_future: bool, stats: list[Any] | None
    ) -> Clients:
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
    contended = statistics.median(run.requests / run.seconds for run in contended_runs)
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
        f" {'steady p99':>10}"
    )
    rows = []
    for s in servings:
        has_latency = bool(s.latencies)
        p50, p99 = s.latency(0.5), s.latency(0.99)
        steady_p99 = s.latency(0.99, steady=True)
        print(
            f"  {s.name:<46} {s.throughput:9.0f} {s.throughput / per_request:9.1f}x "
            f"{s.throughput / ideal_throughput:8.0%} "
            f"{format_seconds(p50) if has_latency else '-':>9} "
            f"{format_seconds(p99) if has_latency else '-':>9} "
            f"{format_seconds(steady_p99) if has_latency else '-':>10}"
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
                "latency_p99_steady_s": steady_p99 if has_latency else None,
                "steady_requests": len(s.steady_latencies),
            }
        )
    print(
        "  one batch's compute time (1 thread): "
        + ", ".join(f"{n}: {format_seconds(t)}" for n, t in compute.items())
    )
    # With CLIENTS synchronous callers no batch holds more than CLIENTS rows, so no batcher
    # can beat back-to-back CLIENTS-row batches with zero cost per request.
    compute_cap = CLIENTS / compute[CLIENTS]
    print(
        f"  {CLIENTS}-row batches back to back (compute only, the cap for {CLIENTS} callers): "
        f"{compute_cap:.0f} req/s = {compute_cap / per_request:.1f}x per-request, "
        f"{compute_cap / ideal_throughput:.0%} of ideal"
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
            "latency_p99_steady_s": serving.latency(0.99, steady=True),
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
            f"(goal <= {format_seconds(bound)}: {met(goal['latency_p99_s'] <= bound)}; "
            f"steady state {format_seconds(goal['latency_p99_steady_s'])}: "
            f"{met(goal['latency_p99_steady_s'] <= bound)})"
        )
    return {
        "clients": CLIENTS,
        "servings": rows,
        "batch_compute_s": {str(n): t for n, t in compute.items()},
        "compute_only_cap_rps": compute_cap,
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


def client_rate(
    call: Callable[[torch.Tensor], Any], inputs: torch.Tensor, rounds: int
) -> tuple[float, list[float]]:
    """Calls per second of CLIENTS threads sending 400 calls each: the median over
    `rounds` runs, and every run's."""
    samples = []
    for _ in range(rounds):
        run = run_clients(call, inputs, 400)
        samples.append(run.requests / run.seconds)
    return statistics.median(samples), samples


def gil_floor(rounds: int) -> dict[str, Any]:
    """The cost of the GIL alone: 16 threads that each release and retake it once per
    iteration (what any synchronous client of a worker thread must do), as iterations/s."""
    rate, _ = client_rate(lambda x: time.sleep(0), torch.zeros(1, 1), rounds)
    print(f"\n  GIL floor: {CLIENTS} threads doing one GIL release per iteration: {rate:,.0f} it/s")
    return {"threads": CLIENTS, "iterations_per_s": rate}


def batcher_overhead(rounds: int) -> dict[str, Any]:
    """The batcher's own cost with CLIENTS callers: fn returns its batch (no model), so
    everything measured is submitting, stacking, splitting, waking and GIL hand-offs."""
    x = torch.randn(256)
    with rq.Batcher(lambda batch: batch, max_batch_size=CLIENTS, max_wait_ms=2.0) as batcher:
        run_clients(batcher, x.expand(8, 256), 200)  # warm-up
        rate, samples = client_rate(batcher, x.expand(8, 256), rounds)
    print(
        f"\n  batcher alone ({CLIENTS} callers, fn returns its batch): {rate:,.0f} req/s, "
        f"{1e6 / rate:.1f} µs per request"
    )
    return {"clients": CLIENTS, "requests_per_s": rate, "samples": samples}


def wake_cost(rounds: int) -> dict[str, Any] | None:
    """Round trips between two threads through two Queue(1)s: each round trip is two
    wake-ups of a parked thread. Measured with the threads on two different CPUs and on one
    CPU: the difference is what waking a thread on another, idle CPU costs (on a VM, an
    idle virtual CPU that halted must be woken by the host)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None
    trips = 20_000

    def ping_pong(cpu_a: int, cpu_b: int) -> float:
        there: rq.Queue[int] = rq.Queue(1)
        back: rq.Queue[int] = rq.Queue(1)
        ready = threading.Barrier(2)

        def echo() -> None:
            os.sched_setaffinity(0, {cpu_b})
            ready.wait()
            for _ in range(trips):
                back.put(there.get())

        def drive() -> float:
            os.sched_setaffinity(0, {cpu_a})
            ready.wait()
            t0 = time.perf_counter()
            for i in range(trips):
                there.put(i)
                back.get()
            return (time.perf_counter() - t0) / trips

        other = threading.Thread(target=echo)
        other.start()
        seconds = in_thread(drive)
        other.join()
        return seconds

    across, same = [], []
    for _ in range(rounds):
        across.append(ping_pong(cpus[0], cpus[1]))
        same.append(ping_pong(cpus[0], cpus[0]))
    result = {
        "round_trip_two_cpus_s": statistics.median(across),
        "round_trip_one_cpu_s": statistics.median(same),
    }
    print(
        f"  thread ping-pong round trip: {format_seconds(result['round_trip_two_cpus_s'])} "
        f"across two CPUs, {format_seconds(result['round_trip_one_cpu_s'])} on one CPU"
    )
    return result


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
    overhead = batcher_overhead(args.rounds)
    wakes = wake_cost(args.rounds)

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
            "batcher_alone": overhead,
            "wake_cost": wakes,
        },
    )


if __name__ == "__main__":
    main()
