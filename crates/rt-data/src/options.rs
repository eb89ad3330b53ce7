//! What to read from a source and how to treat what is found there. Shared by every reader,
//! by `read_*` and by the loader.

use rt_view::DType;

/// A column by name or by 0-based position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnRef {
    /// By header name (CSV) or field name (Parquet, Arrow).
    Name(String),
    /// By position among all columns of the file.
    Index(usize),
}

impl std::fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnRef::Name(name) => write!(f, "{name:?}"),
            ColumnRef::Index(i) => write!(f, "#{i}"),
        }
    }
}

/// What a missing value (empty CSV field, `NA`, `NaN` text, Parquet/Arrow null) becomes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum MissingPolicy {
    /// An error naming file, line and column (`missing="raise"`).
    #[default]
    Raise,
    /// NaN in float outputs; an error for integer labels (`missing="nan"`).
    Nan,
    /// This value (`missing=<number>`).
    Fill(f64),
}

/// What happens to a row that fails to parse (ragged, unparsable, missing under `Raise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// The first bad row fails the read (`on_error="raise"`).
    #[default]
    Raise,
    /// Bad rows are dropped, counted and reported; more than `max_errors` fails the read.
    Skip {
        /// `None`: no limit.
        max_errors: Option<u64>,
    },
}

/// What string and categorical columns become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CategoricalPolicy {
    /// A clear error naming the column (`categorical="raise"`).
    #[default]
    Raise,
    /// Dictionary-encoded to int64 codes, numbered in order of first appearance in the
    /// source's chunk order, so the same data gives the same codes for any thread count
    /// (`categorical="codes"`).
    Codes,
}

/// Which columns to read and the tensors they become.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnOptions {
    /// Feature columns; `None` means every column that is not a label.
    pub features: Option<Vec<ColumnRef>>,
    /// Label columns; empty means no label tensor.
    pub labels: Vec<ColumnRef>,
    /// dtype of the features tensor: `Float32` (default) or `Float64`.
    pub feature_dtype: DType,
    /// dtype of the labels tensor: `Int64` (default), `Float32` or `Float64`.
    pub label_dtype: DType,
    /// Missing values.
    pub missing: MissingPolicy,
    /// String and categorical columns.
    pub categorical: CategoricalPolicy,
    /// Rows that fail.
    pub on_error: OnError,
}

impl Default for ColumnOptions {
    fn default() -> Self {
        Self {
            features: None,
            labels: Vec::new(),
            feature_dtype: DType::Float32,
            label_dtype: DType::Int64,
            missing: MissingPolicy::default(),
            categorical: CategoricalPolicy::default(),
            on_error: OnError::default(),
        }
    }
}
