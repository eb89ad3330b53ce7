//! Per-feature transforms applied inside the pipeline.
