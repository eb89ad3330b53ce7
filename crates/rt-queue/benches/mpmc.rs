//! BoundedQueue against crossbeam-channel's bounded channel, in Rust alone: items per
//! second with 1, 4 and 8 producers and as many consumers, capacity 1024.
//!
//!     cargo bench -p rt-queue --bench mpmc
//!
//! This is the comparison the issue asks for before choosing something other than
//! crossbeam. crossbeam's lock-free slots are somewhat faster in pure Rust; from Python
//! every call also takes the GIL, which dominates (see benchmarks/queue_batcher.py), and the
//! queue needs an explicit close and loom-checkable locking (see src/queue.rs).

#![allow(
    clippy::expect_used,
    reason = "a benchmark binary: a failed thread should stop it loudly"
)]

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rt_queue::BoundedQueue;

const ITEMS: usize = 2_000_000;
const CAPACITY: usize = 1024;
const ROUNDS: usize = 5;

fn run_bounded_queue(threads: usize) -> Duration {
    let q = Arc::new(BoundedQueue::new(CAPACITY).expect("capacity >= 1"));
    let start = Instant::now();
    let producers: Vec<_> = (0..threads)
        .map(|_| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                for i in 0..ITEMS / threads {
                    if q.push(i as u64).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..threads)
        .map(|_| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let mut sum = 0u64;
                while let Ok(x) = q.pop() {
                    sum = sum.wrapping_add(x);
                }
                sum
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    q.close();
    for c in consumers {
        std::hint::black_box(c.join().expect("consumer"));
    }
    start.elapsed()
}

fn run_crossbeam(threads: usize) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let start = Instant::now();
    let producers: Vec<_> = (0..threads)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..ITEMS / threads {
                    if tx.send(i as u64).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..threads)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || {
                let mut sum = 0u64;
                while let Ok(x) = rx.recv() {
                    sum = sum.wrapping_add(x);
                }
                sum
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    for c in consumers {
        std::hint::black_box(c.join().expect("consumer"));
    }
    start.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn main() {
    println!(
        "{ITEMS} u64 items, capacity {CAPACITY}, median of {ROUNDS} interleaved rounds, {} cores",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  {:<22} {:>16} {:>16} {:>8}",
        "producers x consumers", "BoundedQueue", "crossbeam", "ratio"
    );
    for threads in [1, 4, 8] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(run_bounded_queue(threads));
            theirs.push(run_crossbeam(threads));
        }
        let rate = |d: Duration| ITEMS as f64 / d.as_secs_f64();
        let (ours, theirs) = (rate(median(ours)), rate(median(theirs)));
        println!(
            "  {:<22} {:>10.2} M/s {:>10.2} M/s {:>7.2}x",
            format!("{threads} x {threads}"),
            ours / 1e6,
            theirs / 1e6,
            ours / theirs
        );
    }
}
