//! Arrow columns written into row-major destination rows: shared by the Parquet, Arrow IPC
//! and in-memory Arrow sources.
//!
//! A batch is columnar and the destination is row-major, so writing it is a transpose. It is
//! done in blocks of [`BLOCK_ROWS`] rows, in parallel: a block of destination rows stays in
//! cache while every column writes its stride into it. float32 and float64 columns are read
//! in place; every other numeric type is converted once per batch with `arrow-cast`.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef};
use arrow_buffer::NullBuffer;
use arrow_cast::cast::{CastOptions, cast_with_options};
use arrow_schema::DataType;
use rayon::prelude::*;

use crate::error::{DataError, RecordAt, Result};
use crate::options::{CategoricalPolicy, MissingPolicy};
use crate::readers::columns::{ColumnPlan, int_from_f64, missing_float, missing_int};
use crate::readers::csv::parse::OutFloat;
use crate::source::RowsMut;

/// Codes of the string columns under `categorical="codes"`: for each input column, every
/// distinct value numbered 0, 1, 2... in order of first appearance in the source's chunk
/// order. Built once over the whole source before any read, so every chunk (read by any
/// thread, in any order, in memory or stream mode) maps a value to the same code.
#[derive(Debug, Clone, Default)]
pub struct Categories {
    codes: std::collections::HashMap<usize, std::collections::HashMap<String, i64>>,
}

impl Categories {
    /// The text columns among the selected ones of `fields`, when codes are asked for.
    pub fn text_columns(fields: &[(String, DataType)], plan: &ColumnPlan) -> Vec<usize> {
        if plan.categorical != CategoricalPolicy::Codes {
            return Vec::new();
        }
        let mut cols: Vec<usize> = plan
            .feature_cols
            .iter()
            .chain(&plan.label_cols)
            .copied()
            .filter(|&c| fields.get(c).is_some_and(|(_, t)| is_text(t)))
            .collect();
        cols.sort_unstable();
        cols
    }

    /// Adds the values of input column `column` found in `array` (the next rows in chunk
    /// order).
    pub fn add(&mut self, column: usize, array: &ArrayRef) -> Result<()> {
        let strings =
            cast_with_options(array.as_ref(), &DataType::Utf8, &CastOptions::default())
                .map_err(|e| DataError::InvalidArgument(format!("cannot read strings: {e}")))?;
        let map = self.codes.entry(column).or_default();
        for value in strings.as_string::<i32>().iter().flatten() {
            if !map.contains_key(value) {
                let next = map.len() as i64;
                map.insert(value.to_owned(), next);
            }
        }
        Ok(())
    }

    /// Whether column `column` is coded.
    pub fn has(&self, column: usize) -> bool {
        self.codes.contains_key(&column)
    }

    /// The codes of `array` (input column `column`); nulls give 0 (the caller applies the
    /// missing policy to them).
    fn encode(
        &self,
        column: usize,
        array: &ArrayRef,
        name: &str,
        place: BatchPlace<'_>,
    ) -> Result<Vec<i64>> {
        let strings =
            cast_with_options(array.as_ref(), &DataType::Utf8, &CastOptions::default())
                .map_err(|e| DataError::InvalidArgument(format!("cannot read strings: {e}")))?;
        let empty = std::collections::HashMap::new();
        let map = self.codes.get(&column).unwrap_or(&empty);
        strings
            .as_string::<i32>()
            .iter()
            .enumerate()
            .map(|(r, v)| match v {
                None => Ok(0),
                Some(v) => map.get(v).copied().ok_or_else(|| DataError::Parse {
                    file: place.file.to_owned(),
                    at: RecordAt::Row(place.first_row + r as u64),
                    column: name.to_owned(),
                    text: v.to_owned(),
                    expected: "a category seen when the source was opened".to_owned(),
                }),
            })
            .collect()
    }
}

/// Rows per transpose block: 512 rows of 100 float32 features are 200 KiB, inside L2.
pub const BLOCK_ROWS: usize = 512;

/// Whether an Arrow type can become a float or int64 tensor column.
pub fn is_numeric(t: &DataType) -> bool {
    match t {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _)
        | DataType::Null => true,
        DataType::Dictionary(_, values) => is_numeric(values),
        _ => false,
    }
}

/// Whether an Arrow type is text (plain or dictionary-encoded strings).
pub fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

/// Checks that every selected column of `fields` (name, type) can become a tensor column.
pub fn check_types(fields: &[(String, DataType)], plan: &ColumnPlan) -> Result<()> {
    for &c in plan.feature_cols.iter().chain(&plan.label_cols) {
        let Some((name, t)) = fields.get(c) else {
            continue;
        };
        if is_numeric(t) || (is_text(t) && plan.categorical == CategoricalPolicy::Codes) {
            continue;
        }
        let hint = if is_text(t) {
            "string and categorical columns cannot become a float tensor; pass \
             categorical=\"codes\" for int64 codes, or drop the column (features=[...])"
        } else {
            "only numeric, boolean and decimal columns can become a tensor; drop the column \
             with features=[...]"
        };
        return Err(DataError::UnsupportedType {
            column: name.clone(),
            found: t.to_string(),
            hint: hint.to_owned(),
        });
    }
    Ok(())
}

/// Checks that two files have the same columns and types, naming both and the first column
/// that differs.
pub fn check_same_fields(
    first_file: &str,
    first: &[(String, DataType)],
    file: &str,
    fields: &[(String, DataType)],
) -> Result<()> {
    let names = |f: &[(String, DataType)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    crate::readers::columns::check_same_columns(first_file, &names(first), file, &names(fields))?;
    for ((name, a), (_, b)) in first.iter().zip(fields) {
        if a != b {
            return Err(DataError::Schema(format!(
                "the files of one source must have the same column types: column {name:?} is \
                 {a} in {first_file} but {b} in {file}"
            )));
        }
    }
    Ok(())
}

/// Where a batch sits, for messages.
#[derive(Debug, Clone, Copy)]
pub struct BatchPlace<'a> {
    /// The file (or `"<arrow>"`).
    pub file: &'a str,
    /// 0-based row of the batch's first row in the file.
    pub first_row: u64,
}

/// A float column ready to be read row by row.
enum FloatColumn<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    /// 64-bit integers, rounded once to the output type (through f64 they would be rounded
    /// twice above 2^53, unlike NumPy's and pyarrow's casts).
    I64(&'a [i64]),
    U64(&'a [u64]),
    Owned(Vec<f64>),
}

fn cast(array: &dyn Array, to: &DataType, name: &str, place: BatchPlace<'_>) -> Result<ArrayRef> {
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(array, to, &options).map_err(|e| DataError::Parse {
        file: place.file.to_owned(),
        at: RecordAt::BatchFrom(place.first_row),
        column: name.to_owned(),
        text: e.to_string(),
        expected: format!("values that fit {to}"),
    })
}

/// The first null row's error under `missing="raise"`, else the value nulls become.
fn null_value<T>(
    nulls: Option<&NullBuffer>,
    name: &str,
    place: BatchPlace<'_>,
    policy_value: impl FnOnce(Box<dyn FnOnce() -> DataError>) -> Result<T>,
) -> Result<Option<T>> {
    let Some(nulls) = nulls.filter(|n| n.null_count() > 0) else {
        return Ok(None);
    };
    let first_null = nulls.iter().position(|valid| !valid).unwrap_or(0) as u64;
    let error = {
        let file = place.file.to_owned();
        let column = name.to_owned();
        let at = RecordAt::Row(place.first_row + first_null);
        Box::new(move || DataError::Missing { file, at, column }) as Box<dyn FnOnce() -> DataError>
    };
    policy_value(error).map(Some)
}

fn prepare_float<'a>(
    array: &'a ArrayRef,
    name: &str,
    place: BatchPlace<'_>,
    missing: MissingPolicy,
    coded: Option<(&Categories, usize)>,
) -> Result<(FloatColumn<'a>, Option<NullBuffer>, f64)> {
    let nulls = array.logical_nulls();
    let fill = null_value(nulls.as_ref(), name, place, |e| missing_float(missing, e))?;
    if let Some((categories, column)) = coded {
        let codes = categories.encode(column, array, name, place)?;
        let values = FloatColumn::Owned(codes.into_iter().map(|c| c as f64).collect());
        return Ok((values, nulls, fill.unwrap_or(f64::NAN)));
    }
    let values = match array.data_type() {
        DataType::Float32 => FloatColumn::F32(array.as_primitive::<Float32Type>().values()),
        DataType::Float64 => FloatColumn::F64(array.as_primitive::<Float64Type>().values()),
        DataType::Int64 => FloatColumn::I64(array.as_primitive::<Int64Type>().values()),
        DataType::UInt64 => FloatColumn::U64(array.as_primitive::<UInt64Type>().values()),
        _ => {
            let cast = cast(array.as_ref(), &DataType::Float64, name, place)?;
            FloatColumn::Owned(cast.as_primitive::<Float64Type>().values().to_vec())
        }
    };
    Ok((values, nulls, fill.unwrap_or(f64::NAN)))
}

fn prepare_int(
    array: &ArrayRef,
    name: &str,
    place: BatchPlace<'_>,
    missing: MissingPolicy,
    coded: Option<(&Categories, usize)>,
) -> Result<(Vec<i64>, Option<NullBuffer>, i64)> {
    let nulls = array.logical_nulls();
    let fill = null_value(nulls.as_ref(), name, place, |e| missing_int(missing, e))?;
    if let Some((categories, column)) = coded {
        return Ok((
            categories.encode(column, array, name, place)?,
            nulls,
            fill.unwrap_or(0),
        ));
    }
    let t = array.data_type();
    let float_like = matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
        || matches!(t, DataType::Decimal32(_, s) | DataType::Decimal64(_, s) | DataType::Decimal128(_, s) | DataType::Decimal256(_, s) if *s > 0);
    let values = if float_like {
        let cast = cast(array.as_ref(), &DataType::Float64, name, place)?;
        let floats = cast.as_primitive::<Float64Type>().values();
        let mut out = Vec::with_capacity(floats.len());
        for (r, &v) in floats.iter().enumerate() {
            let valid = nulls.as_ref().is_none_or(|n| n.is_valid(r));
            match int_from_f64(v) {
                Some(i) => out.push(i),
                None if !valid => out.push(0),
                None => {
                    return Err(DataError::Parse {
                        file: place.file.to_owned(),
                        at: RecordAt::Row(place.first_row + r as u64),
                        column: name.to_owned(),
                        text: v.to_string(),
                        expected:
                            "an integer label (pass label_dtype=\"float32\" for float labels)"
                                .to_owned(),
                    });
                }
            }
        }
        out
    } else {
        let cast = cast(array.as_ref(), &DataType::Int64, name, place)?;
        cast.as_primitive::<Int64Type>().values().to_vec()
    };
    Ok((values, nulls, fill.unwrap_or(0)))
}

/// A selected column of a batch: the array, its name, and its codes when it is a coded
/// string column.
type Picked<'a> = (&'a ArrayRef, &'a str, Option<(&'a Categories, usize)>);

/// Writes `values[r0..]`, converted, into `slots` (one column's elements of a block of rows).
#[inline(always)]
fn copy_column<'s, F: 's, X: Copy>(
    slots: impl Iterator<Item = &'s mut F>,
    values: &[X],
    r0: usize,
    convert: impl Fn(X) -> F,
) {
    let src = values.get(r0..).unwrap_or_default();
    for (slot, &x) in slots.zip(src) {
        *slot = convert(x);
    }
}

/// Writes the columns `arrays` (one per output column, in output order) into the row-major
/// `[rows, arrays.len()]` float buffer `out`.
fn write_float<F: OutFloat>(
    out: &mut [F],
    arrays: &[Picked<'_>],
    place: BatchPlace<'_>,
    missing: MissingPolicy,
) -> Result<()> {
    let width = arrays.len();
    if width == 0 {
        return Ok(());
    }
    let columns = arrays
        .iter()
        .map(|(a, name, coded)| prepare_float(a, name, place, missing, *coded))
        .collect::<Result<Vec<_>>>()?;
    out.par_chunks_mut(BLOCK_ROWS * width)
        .enumerate()
        .for_each(|(block, rows)| {
            let r0 = block * BLOCK_ROWS;
            for (k, (values, nulls, fill)) in columns.iter().enumerate() {
                let slots = rows
                    .chunks_exact_mut(width)
                    .filter_map(|row| row.get_mut(k));
                match values {
                    FloatColumn::F32(v) => copy_column(slots, v, r0, |x| F::from_f64(f64::from(x))),
                    FloatColumn::F64(v) => copy_column(slots, v, r0, F::from_f64),
                    FloatColumn::I64(v) => copy_column(slots, v, r0, F::from_i64),
                    FloatColumn::U64(v) => copy_column(slots, v, r0, F::from_u64),
                    FloatColumn::Owned(v) => copy_column(slots, v, r0, F::from_f64),
                }
                if let Some(nulls) = nulls {
                    let fill = F::from_f64(*fill);
                    for (i, row) in rows.chunks_exact_mut(width).enumerate() {
                        if nulls.is_null(r0 + i)
                            && let Some(slot) = row.get_mut(k)
                        {
                            *slot = fill;
                        }
                    }
                }
            }
        });
    Ok(())
}

fn write_int(
    out: &mut [i64],
    arrays: &[Picked<'_>],
    place: BatchPlace<'_>,
    missing: MissingPolicy,
) -> Result<()> {
    let width = arrays.len();
    if width == 0 {
        return Ok(());
    }
    for (k, (array, name, coded)) in arrays.iter().enumerate() {
        let (values, nulls, fill) = prepare_int(array, name, place, missing, *coded)?;
        for (r, (row, &v)) in out.chunks_exact_mut(width).zip(&values).enumerate() {
            let null = nulls.as_ref().is_some_and(|n| n.is_null(r));
            if let Some(slot) = row.get_mut(k) {
                *slot = if null { fill } else { v };
            }
        }
    }
    Ok(())
}

/// Writes one batch's selected columns into destination rows: `column(i)` gives the array of
/// input column `i` (by its index in the file's schema).
#[allow(clippy::too_many_arguments)]
pub fn write_batch<'b>(
    plan: &ColumnPlan,
    categories: &Categories,
    column: impl Fn(usize) -> Option<&'b ArrayRef>,
    rows: usize,
    features: RowsMut<'_>,
    labels: Option<RowsMut<'_>>,
    place: BatchPlace<'_>,
) -> Result<()> {
    let pick = |cols: &[usize]| -> Result<Vec<Picked<'_>>> {
        cols.iter()
            .map(|&c| {
                let name = plan.input_names.get(c).map_or("?", String::as_str);
                let array = column(c).ok_or_else(|| {
                    DataError::Schema(format!("{}: column {name:?} is missing", place.file))
                })?;
                if array.len() != rows {
                    return Err(DataError::Corrupt {
                        file: place.file.to_owned(),
                        reason: format!(
                            "column {name:?} has {} rows, expected {rows}",
                            array.len()
                        ),
                    });
                }
                let coded = categories.has(c).then_some((categories, c));
                Ok((array, name, coded))
            })
            .collect()
    };
    let feature_arrays = pick(&plan.feature_cols)?;
    let nf = plan.feature_cols.len();
    match features {
        RowsMut::F32(out) => write_float(
            slice_rows(out, rows, nf)?,
            &feature_arrays,
            place,
            plan.missing,
        )?,
        RowsMut::F64(out) => write_float(
            slice_rows(out, rows, nf)?,
            &feature_arrays,
            place,
            plan.missing,
        )?,
        RowsMut::I64(_) => {
            return Err(DataError::InvalidArgument(
                "features are float32 or float64".to_owned(),
            ));
        }
    }
    let label_arrays = pick(&plan.label_cols)?;
    let nl = plan.label_cols.len();
    match labels {
        Some(RowsMut::I64(out)) => write_int(
            slice_rows(out, rows, nl)?,
            &label_arrays,
            place,
            plan.missing,
        )?,
        Some(RowsMut::F32(out)) => write_float(
            slice_rows(out, rows, nl)?,
            &label_arrays,
            place,
            plan.missing,
        )?,
        Some(RowsMut::F64(out)) => write_float(
            slice_rows(out, rows, nl)?,
            &label_arrays,
            place,
            plan.missing,
        )?,
        None => {}
    }
    Ok(())
}

fn slice_rows<T>(out: &mut [T], rows: usize, width: usize) -> Result<&mut [T]> {
    out.get_mut(..rows * width)
        .ok_or_else(|| DataError::InvalidArgument("destination too small".to_owned()))
}

/// `rows` rows of `dest`, starting at row `start`.
pub fn rows_from<'a>(dest: &'a mut RowsMut<'_>, start: usize, width: usize) -> RowsMut<'a> {
    fn tail<T>(s: &mut [T], from: usize) -> &mut [T] {
        let from = from.min(s.len());
        s.get_mut(from..).unwrap_or_default()
    }
    match dest {
        RowsMut::F32(s) => RowsMut::F32(tail(s, start * width)),
        RowsMut::F64(s) => RowsMut::F64(tail(s, start * width)),
        RowsMut::I64(s) => RowsMut::I64(tail(s, start * width)),
    }
}
