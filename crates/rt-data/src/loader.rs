//! The loader: epochs, shuffling, sharding, batching, prefetch, resume and statistics.
