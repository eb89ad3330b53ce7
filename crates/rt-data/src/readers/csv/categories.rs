//! `categorical="codes"` for CSV: which columns hold text, and the code of every value.
//!
//! A CSV has no column types, so two passes over the selected columns run at open, each in
//! parallel over the chunks: the first finds the columns where some value is neither a number
//! nor an NA string; the second collects those columns' distinct values in order of first
//! appearance within each chunk, and the per-chunk lists are merged in chunk order. The codes
//! are therefore the same for any thread count, and known before any read (stream mode reads
//! chunks in shuffled order).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::number::FieldValue;
use super::parse::{Term, Text, scan_field};
use super::{CsvChunk, CsvFile, CsvSource, read_chunk_bytes};
use crate::error::Result;
use crate::readers::columns::Role;

/// For every input column, its codes when it is a coded text column.
pub type Codes = Vec<Option<HashMap<Vec<u8>, i64>>>;

/// Calls `visit(column, text)` for every field of every record of chunk `c`.
fn for_each_field(
    source: &CsvSource,
    c: &CsvChunk,
    f: &CsvFile,
    mut visit: impl FnMut(usize, &[u8]),
) -> Result<()> {
    let d = source.dialect;
    let mut scratch = Vec::new();
    read_chunk_bytes(c, f, |buf, at_eof| {
        let mut pos = 0usize;
        while pos < buf.len() {
            // Blank and comment lines, as the decoder skips them.
            match buf.get(pos) {
                Some(b'\n') => {
                    pos += 1;
                    continue;
                }
                Some(b'\r') if matches!(buf.get(pos + 1), Some(b'\n') | None) => {
                    if buf.get(pos + 1).is_none() && !at_eof {
                        return pos;
                    }
                    pos += 1;
                    continue;
                }
                Some(&b) if Some(b) == d.comment => {
                    match memchr::memchr(b'\n', buf.get(pos..).unwrap_or_default()) {
                        Some(o) => pos += o + 1,
                        None if at_eof => pos = buf.len(),
                        None => return pos,
                    }
                    continue;
                }
                _ => {}
            }
            let start = pos;
            let mut col = 0usize;
            let mut fields: Vec<(usize, Text)> = Vec::new();
            let mut texts: Vec<Vec<u8>> = Vec::new();
            loop {
                let s = match scan_field(buf, pos, at_eof, d, &mut scratch, false) {
                    Ok(Some(s)) => s,
                    Ok(None) => return start,
                    // An unclosed quote: the decoder reports it; nothing more to learn here.
                    Err(_) => return buf.len(),
                };
                match s.text {
                    Text::Buf(a, b) => fields.push((col, Text::Buf(a, b))),
                    Text::Scratch => {
                        fields.push((col, Text::Scratch));
                        texts.push(scratch.clone());
                    }
                }
                col += 1;
                pos = s.next;
                if s.term != Term::Delimiter {
                    break;
                }
            }
            // The record is complete: report its fields.
            let mut quoted = texts.iter();
            for (col, text) in fields {
                match text {
                    Text::Buf(a, b) => visit(col, buf.get(a..b).unwrap_or_default()),
                    Text::Scratch => {
                        if let Some(t) = quoted.next() {
                            visit(col, t);
                        }
                    }
                }
            }
        }
        pos
    })
}

/// The codes of `source`'s text columns (every entry `None` when there are none).
pub fn collect(source: &CsvSource) -> Result<Codes> {
    let columns = source.plan.roles.len();
    let selected: Vec<bool> = source
        .plan
        .roles
        .iter()
        .map(|r| !matches!(r, Role::Skip))
        .collect();
    let na = &source.na;
    // Pass 1: which selected columns hold text.
    let text: Vec<bool> = (0..source.chunks.len())
        .into_par_iter()
        .map(|i| -> Result<Vec<bool>> {
            let mut text = vec![false; columns];
            let (c, f) = source.chunk(i)?;
            for_each_field(source, c, f, |col, value| {
                let undecided = selected.get(col) == Some(&true) && text.get(col) == Some(&false);
                if undecided
                    && na.parse_float(value) == FieldValue::Invalid
                    && let Some(t) = text.get_mut(col)
                {
                    *t = true;
                }
            })?;
            Ok(text)
        })
        .try_reduce(
            || vec![false; columns],
            |a, b| Ok(a.iter().zip(&b).map(|(x, y)| *x || *y).collect()),
        )?;
    if !text.iter().any(|&t| t) {
        return Ok(vec![None; columns]);
    }
    // Pass 2: distinct values of the text columns, first appearance per chunk...
    let per_chunk: Vec<Vec<Vec<Vec<u8>>>> = (0..source.chunks.len())
        .into_par_iter()
        .map(|i| -> Result<Vec<Vec<Vec<u8>>>> {
            let mut seen: Vec<HashSet<Vec<u8>>> = vec![HashSet::new(); columns];
            let mut order: Vec<Vec<Vec<u8>>> = vec![Vec::new(); columns];
            let (c, f) = source.chunk(i)?;
            for_each_field(source, c, f, |col, value| {
                if text.get(col) != Some(&true) || na.contains(value) {
                    return;
                }
                if let (Some(s), Some(o)) = (seen.get_mut(col), order.get_mut(col))
                    && s.insert(value.to_vec())
                {
                    o.push(value.to_vec());
                }
            })?;
            Ok(order)
        })
        .collect::<Result<_>>()?;
    // ... merged in chunk order.
    let mut codes: Codes = vec![None; columns];
    for (col, is_text) in text.iter().enumerate() {
        if !is_text {
            continue;
        }
        let mut map = HashMap::new();
        for chunk in &per_chunk {
            for value in chunk.get(col).into_iter().flatten() {
                let next = map.len() as i64;
                map.entry(value.clone()).or_insert(next);
            }
        }
        if let Some(slot) = codes.get_mut(col) {
            *slot = Some(map);
        }
    }
    Ok(codes)
}
