//! Converting the readers' keyword arguments (shared with the DataLoader) into
//! [`ColumnOptions`].

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyList, PyString, PyTuple};
use rt_view::DType;

use crate::options::{CategoricalPolicy, ColumnOptions, ColumnRef, MissingPolicy, OnError};

/// The column keyword arguments every `open_*` takes, as Python gave them.
#[derive(Debug)]
pub struct ColumnArgs<'py> {
    /// `features=`: None or a list of names/indices.
    pub features: Option<Bound<'py, PyAny>>,
    /// `label=`: None, a name/index, or a list of them.
    pub label: Option<Bound<'py, PyAny>>,
    /// `feature_dtype=`.
    pub feature_dtype: Option<Bound<'py, PyAny>>,
    /// `label_dtype=`.
    pub label_dtype: Option<Bound<'py, PyAny>>,
    /// `missing=`.
    pub missing: Option<Bound<'py, PyAny>>,
    /// `categorical=`.
    pub categorical: Option<String>,
}

impl ColumnArgs<'_> {
    /// The options they mean.
    pub fn to_options(&self) -> PyResult<ColumnOptions> {
        let mut options = ColumnOptions::default();
        if let Some(features) = self.features.as_ref().filter(|f| !f.is_none()) {
            options.features = Some(column_list(features, "features")?);
        }
        if let Some(label) = self.label.as_ref().filter(|l| !l.is_none()) {
            options.labels = if label.is_instance_of::<PyList>() || label.is_instance_of::<PyTuple>()
            {
                column_list(label, "label")?
            } else {
                vec![column_ref(label, "label")?]
            };
        }
        if let Some(d) = self.feature_dtype.as_ref().filter(|d| !d.is_none()) {
            options.feature_dtype = dtype(d, "feature_dtype")?;
        }
        if let Some(d) = self.label_dtype.as_ref().filter(|d| !d.is_none()) {
            options.label_dtype = dtype(d, "label_dtype")?;
        }
        if let Some(m) = self.missing.as_ref().filter(|m| !m.is_none()) {
            options.missing = missing(m)?;
        }
        options.categorical = match self.categorical.as_deref() {
            None | Some("raise") => CategoricalPolicy::Raise,
            Some("codes") => CategoricalPolicy::Codes,
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "categorical must be \"raise\" or \"codes\", not {other:?}"
                )));
            }
        };
        Ok(options)
    }
}

fn column_ref(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<ColumnRef> {
    if let Ok(name) = obj.cast::<PyString>() {
        return Ok(ColumnRef::Name(name.to_str()?.to_owned()));
    }
    let index = if obj.is_instance_of::<PyBool>() {
        None
    } else {
        obj.extract::<i64>().ok()
    };
    if let Some(index) = index {
        return usize::try_from(index).map(ColumnRef::Index).map_err(|_| {
            PyValueError::new_err(format!("{what}: column index {index} is negative"))
        });
    }
    Err(PyTypeError::new_err(format!(
        "{what}: a column is a name (str) or a 0-based index (int), not {}",
        obj.get_type().name()?
    )))
}

fn column_list(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<ColumnRef>> {
    if obj.is_instance_of::<PyString>() {
        return Ok(vec![column_ref(obj, what)?]);
    }
    obj.try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a list of column names or indices")))?
        .map(|item| column_ref(&item?, what))
        .collect()
}

/// A dtype from `"float32"`, `"torch.float32"` or `torch.float32`.
pub fn dtype(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<DType> {
    let text = obj.str()?.to_str()?.to_owned();
    let name = text.strip_prefix("torch.").unwrap_or(&text);
    DType::from_name(name)
        .ok_or_else(|| PyValueError::new_err(format!("{what}: unknown dtype {text:?}")))
}

fn missing(obj: &Bound<'_, PyAny>) -> PyResult<MissingPolicy> {
    if let Ok(s) = obj.cast::<PyString>() {
        return match s.to_str()? {
            "raise" => Ok(MissingPolicy::Raise),
            "nan" => Ok(MissingPolicy::Nan),
            other => Err(PyValueError::new_err(format!(
                "missing must be \"raise\", \"nan\" or a number, not {other:?}"
            ))),
        };
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err("missing must be \"raise\", \"nan\" or a number"));
    }
    obj.extract::<f64>()
        .map(MissingPolicy::Fill)
        .map_err(|_| PyTypeError::new_err("missing must be \"raise\", \"nan\" or a number"))
}

/// `on_error=` and `max_errors=`.
pub fn on_error(on_error: &str, max_errors: Option<u64>) -> PyResult<OnError> {
    match on_error {
        "raise" => Ok(OnError::Raise),
        "skip" => Ok(OnError::Skip { max_errors }),
        other => Err(PyValueError::new_err(format!(
            "on_error must be \"raise\" or \"skip\", not {other:?}"
        ))),
    }
}

/// A one-byte character argument (`delimiter`, `quote`, `comment`).
pub fn byte_char(value: &str, what: &str) -> PyResult<u8> {
    match value.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(PyValueError::new_err(format!(
            "{what} must be a single ASCII character, not {value:?}"
        ))),
    }
}
