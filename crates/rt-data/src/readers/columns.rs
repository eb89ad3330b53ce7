//! Column resolution shared by every format: which input columns become features and labels,
//! in which order and dtype, and what a missing value becomes.

use rt_view::DType;

use crate::error::{DataError, Result};
use crate::options::{CategoricalPolicy, ColumnOptions, ColumnRef, MissingPolicy};
use crate::source::Schema;

/// What one input column is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not read.
    Skip,
    /// Feature number `k` of the output row.
    Feature(usize),
    /// Label number `k` of the output row.
    Label(usize),
}

/// The resolved columns: the output schema and, for every input column, its role.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPlan {
    /// The output tensors.
    pub schema: Schema,
    /// Input column index of each output feature.
    pub feature_cols: Vec<usize>,
    /// Input column index of each output label.
    pub label_cols: Vec<usize>,
    /// Role of every input column (`names.len()` entries).
    pub roles: Vec<Role>,
    /// Names of every input column.
    pub input_names: Vec<String>,
    /// The missing-value policy, checked against the dtypes.
    pub missing: MissingPolicy,
    /// What string columns become.
    pub categorical: CategoricalPolicy,
}

fn find(names: &[String], column: &ColumnRef) -> Result<usize> {
    match column {
        ColumnRef::Name(name) => names.iter().position(|n| n == name).ok_or_else(|| {
            DataError::Schema(format!(
                "no column named {name:?}; available columns: {}",
                list(names)
            ))
        }),
        ColumnRef::Index(i) if *i < names.len() => Ok(*i),
        ColumnRef::Index(i) => Err(DataError::Schema(format!(
            "column index {i} is out of range: the data has {} columns ({})",
            names.len(),
            list(names)
        ))),
    }
}

/// The column names, shortened for a message.
fn list(names: &[String]) -> String {
    const SHOWN: usize = 40;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(", ... ({} in all)", names.len()));
    }
    if names.is_empty() {
        text.push_str("(none)");
    }
    text
}

/// Checks the output dtypes and that a fill value fits them.
pub fn check_options(options: &ColumnOptions) -> Result<()> {
    if !matches!(options.feature_dtype, DType::Float32 | DType::Float64) {
        return Err(DataError::InvalidArgument(format!(
            "feature_dtype must be float32 or float64, not {}",
            options.feature_dtype
        )));
    }
    if !matches!(
        options.label_dtype,
        DType::Int64 | DType::Float32 | DType::Float64
    ) {
        return Err(DataError::InvalidArgument(format!(
            "label_dtype must be int64, float32 or float64, not {}",
            options.label_dtype
        )));
    }
    let fill = match options.missing {
        MissingPolicy::Fill(v) => Some(v),
        _ => None,
    };
    let int_labels = options.label_dtype == DType::Int64 && !options.labels.is_empty();
    if let Some(v) = fill.filter(|&v| int_labels && int_from_f64(v).is_none()) {
        return Err(DataError::InvalidArgument(format!(
            "missing={v} cannot fill an int64 label; pass an integer or label_dtype=\"float32\""
        )));
    }
    Ok(())
}

/// `v` as an int64 when it is a whole number in range.
pub fn int_from_f64(v: f64) -> Option<i64> {
    // 2^63 as f64 is exact; every whole f64 below it in magnitude converts exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v)).then_some(v as i64)
}

/// Resolves `options` against the input column `names`.
///
/// With no known columns (an empty file), no column is selected by default, so an empty file
/// gives an empty dataset; a column named or indexed in the options does not exist there and
/// is a schema error, as for any other file (it must not invent columns).
pub fn resolve(names: &[String], options: &ColumnOptions) -> Result<ColumnPlan> {
    check_options(options)?;
    let mut roles = vec![Role::Skip; names.len()];
    let mut label_cols = Vec::with_capacity(options.labels.len());
    for (k, column) in options.labels.iter().enumerate() {
        let i = find(names, column)?;
        if roles[i] != Role::Skip {
            return Err(DataError::Schema(format!(
                "label column {:?} is listed twice",
                names[i]
            )));
        }
        roles[i] = Role::Label(k);
        label_cols.push(i);
    }
    let feature_cols: Vec<usize> = match &options.features {
        Some(features) => {
            let mut cols = Vec::with_capacity(features.len());
            for column in features {
                let i = find(names, column)?;
                match roles[i] {
                    Role::Skip => {}
                    Role::Label(_) => {
                        return Err(DataError::Schema(format!(
                            "column {:?} is both a feature and a label",
                            names[i]
                        )));
                    }
                    Role::Feature(_) => {
                        return Err(DataError::Schema(format!(
                            "feature column {:?} is listed twice",
                            names[i]
                        )));
                    }
                }
                roles[i] = Role::Feature(cols.len());
                cols.push(i);
            }
            cols
        }
        None => {
            let cols: Vec<usize> = (0..names.len())
                .filter(|&i| roles[i] == Role::Skip)
                .collect();
            for (k, &i) in cols.iter().enumerate() {
                roles[i] = Role::Feature(k);
            }
            cols
        }
    };
    Ok(ColumnPlan {
        schema: Schema {
            feature_names: feature_cols.iter().map(|&i| names[i].clone()).collect(),
            label_names: label_cols.iter().map(|&i| names[i].clone()).collect(),
            feature_dtype: options.feature_dtype,
            label_dtype: options.label_dtype,
        },
        feature_cols,
        label_cols,
        roles,
        input_names: names.to_vec(),
        missing: options.missing,
        categorical: options.categorical,
    })
}

/// Checks that every file of a source has the same columns as the first one, naming both
/// files and the first column that differs.
pub fn check_same_columns(
    first_file: &str,
    first: &[String],
    file: &str,
    names: &[String],
) -> Result<()> {
    if first == names {
        return Ok(());
    }
    let position = first
        .iter()
        .zip(names)
        .position(|(a, b)| a != b)
        .unwrap_or(first.len().min(names.len()));
    let describe = |cols: &[String]| match cols.get(position) {
        Some(name) => format!("column {position} is {name:?}"),
        None => format!("has only {} columns", cols.len()),
    };
    Err(DataError::Schema(format!(
        "the files of one source must have the same columns: in {first_file} {}, in {file} {}",
        describe(first),
        describe(names)
    )))
}

/// What a missing value becomes in a float output, or the error under `missing="raise"`.
#[inline]
pub fn missing_float(policy: MissingPolicy, error: impl FnOnce() -> DataError) -> Result<f64> {
    match policy {
        MissingPolicy::Raise => Err(error()),
        MissingPolicy::Nan => Ok(f64::NAN),
        MissingPolicy::Fill(v) => Ok(v),
    }
}

/// What a missing value becomes in an int64 label (a fill value checked by [`check_options`];
/// NaN does not exist in int64, so `missing="nan"` is an error there).
#[inline]
pub fn missing_int(policy: MissingPolicy, error: impl FnOnce() -> DataError) -> Result<i64> {
    match policy {
        MissingPolicy::Fill(v) => int_from_f64(v).ok_or_else(error),
        MissingPolicy::Raise | MissingPolicy::Nan => Err(error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_features_are_the_non_label_columns() {
        let opts = ColumnOptions {
            labels: vec![ColumnRef::Name("y".into())],
            ..Default::default()
        };
        let plan = resolve(&names(&["a", "y", "b"]), &opts).unwrap();
        assert_eq!(plan.feature_cols, vec![0, 2]);
        assert_eq!(plan.label_cols, vec![1]);
        assert_eq!(
            plan.roles,
            vec![Role::Feature(0), Role::Label(0), Role::Feature(1)]
        );
    }

    #[test]
    fn unknown_name_lists_the_columns() {
        let opts = ColumnOptions {
            labels: vec![ColumnRef::Name("z".into())],
            ..Default::default()
        };
        let err = resolve(&names(&["a", "b"]), &opts).unwrap_err().to_string();
        assert!(
            err.contains("\"z\"") && err.contains("\"a\", \"b\""),
            "{err}"
        );
    }

    #[test]
    fn no_columns_select_nothing_and_invent_nothing() {
        let plan = resolve(&[], &ColumnOptions::default()).unwrap();
        assert!(plan.schema.feature_names.is_empty() && plan.schema.label_names.is_empty());
        for opts in [
            ColumnOptions {
                labels: vec![ColumnRef::Name("zz".into())],
                ..Default::default()
            },
            ColumnOptions {
                features: Some(vec![ColumnRef::Index(7)]),
                ..Default::default()
            },
        ] {
            let err = resolve(&[], &opts).unwrap_err();
            assert!(matches!(err, DataError::Schema(_)), "{err}");
        }
    }

    #[test]
    fn feature_and_label_overlap_is_refused() {
        let opts = ColumnOptions {
            features: Some(vec![ColumnRef::Index(0)]),
            labels: vec![ColumnRef::Index(0)],
            ..Default::default()
        };
        assert!(resolve(&names(&["a", "b"]), &opts).is_err());
    }

    #[test]
    fn differing_files_name_both_and_the_column() {
        let err = check_same_columns("a.csv", &names(&["x", "y"]), "b.csv", &names(&["x", "z"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.csv") && err.contains("b.csv") && err.contains("\"z\""),
            "{err}"
        );
    }

    #[test]
    fn int_conversion_is_exact() {
        assert_eq!(int_from_f64(3.0), Some(3));
        assert_eq!(int_from_f64(1.5), None);
        assert_eq!(int_from_f64(9.3e18), None);
        assert_eq!(int_from_f64(-9_223_372_036_854_775_808.0), Some(i64::MIN));
    }
}
