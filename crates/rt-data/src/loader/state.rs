//! What a `state_dict` needs from the Rust side: where the consumer is, and a fingerprint
//! of the data so that a state is never applied to other data by mistake.
//!
//! The Python layer turns these into the `state_dict` (plain ints, strings and lists, so
//! `torch.save` and JSON both work) and checks them on `load_state_dict`.

use crate::source::Source;

/// Version of the `state_dict` layout; bumped on any change of its meaning (including the
/// shuffle algorithm of `order.rs`).
pub const STATE_VERSION: u32 = 1;

/// Where the consumer is: `batches` of epoch `epoch` were yielded to it (not merely
/// prefetched).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The epoch in progress, or the next one once `finished`.
    pub epoch: u64,
    /// Batches of it yielded to the consumer.
    pub batches: u64,
    /// Samples of it yielded to the consumer.
    pub samples: u64,
}

/// What identifies the data: files and their sizes, chunking, schema and rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Files in source order, each once, with the bytes the source covers in it.
    pub files: Vec<(String, u64)>,
    /// Number of chunks.
    pub chunks: usize,
    /// Rows, when known (always in memory mode).
    pub rows: Option<u64>,
    /// Feature and label column names.
    pub columns: Vec<String>,
    /// FNV-1a of everything above, as 16 hex digits.
    pub digest: String,
}

/// FNV-1a 64: tiny and stable forever, unlike `std`'s hasher, whose output may change
/// between Rust releases.
fn fnv1a(bytes: impl IntoIterator<Item = u8>, mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The fingerprint of `source` with `rows` rows (when known).
pub fn fingerprint(source: &dyn Source, rows: Option<u64>) -> Fingerprint {
    let mut files: Vec<(String, u64)> = Vec::new();
    for chunk in source.chunks() {
        match files.last_mut() {
            Some((name, bytes)) if **name == *chunk.file => *bytes += chunk.bytes,
            _ => files.push((chunk.file.to_string(), chunk.bytes)),
        }
    }
    let schema = source.schema();
    let columns: Vec<String> = schema
        .feature_names
        .iter()
        .map(|n| format!("f:{n}"))
        .chain(schema.label_names.iter().map(|n| format!("l:{n}")))
        .collect();
    let mut h = 0xcbf2_9ce4_8422_2325;
    for (name, bytes) in &files {
        h = fnv1a(name.bytes().chain([0]), h);
        h = fnv1a(bytes.to_le_bytes(), h);
    }
    h = fnv1a((source.chunks().len() as u64).to_le_bytes(), h);
    h = fnv1a(rows.unwrap_or(u64::MAX).to_le_bytes(), h);
    for c in &columns {
        h = fnv1a(c.bytes().chain([0]), h);
    }
    h = fnv1a(
        format!("{}/{}", schema.feature_dtype, schema.label_dtype).bytes(),
        h,
    );
    Fingerprint {
        files,
        chunks: source.chunks().len(),
        rows,
        columns,
        digest: format!("{h:016x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_the_reference_function() {
        // Test vectors of FNV-1a 64.
        assert_eq!(fnv1a(*b"", 0xcbf2_9ce4_8422_2325), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a", 0xcbf2_9ce4_8422_2325), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            fnv1a(*b"foobar", 0xcbf2_9ce4_8422_2325),
            0x8594_4171_f739_67e8
        );
    }
}
