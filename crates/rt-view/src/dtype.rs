//! Element types: the runtime [`DType`] tag and the compile-time [`Element`] trait.

use std::fmt;

/// The element types rusttorch understands, named as torch names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 binary32 (`torch.float32`).
    Float32,
    /// IEEE 754 binary64 (`torch.float64`).
    Float64,
    /// IEEE 754 binary16 (`torch.float16`).
    Float16,
    /// bfloat16 (`torch.bfloat16`).
    BFloat16,
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    UInt8,
    /// One byte per boolean (`torch.bool`).
    Bool,
}

impl DType {
    /// Every dtype, in a fixed order.
    pub const ALL: [DType; 10] = [
        DType::Float32,
        DType::Float64,
        DType::Float16,
        DType::BFloat16,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::Bool,
    ];

    /// Bytes per element.
    pub const fn itemsize(self) -> usize {
        match self {
            DType::Int8 | DType::UInt8 | DType::Bool => 1,
            DType::Float16 | DType::BFloat16 | DType::Int16 => 2,
            DType::Float32 | DType::Int32 => 4,
            DType::Float64 | DType::Int64 => 8,
        }
    }

    /// The torch name without the `torch.` prefix (`"float32"`, `"bool"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Float16 => "float16",
            DType::BFloat16 => "bfloat16",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::Bool => "bool",
        }
    }

    /// Parses a name produced by [`DType::name`].
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// True for the four floating-point dtypes.
    pub const fn is_floating_point(self) -> bool {
        matches!(
            self,
            DType::Float32 | DType::Float64 | DType::Float16 | DType::BFloat16
        )
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A boolean stored in one byte, as torch and NumPy store them.
///
/// Rust's `bool` must hold exactly 0 or 1; memory that arrives from Python may hold any
/// byte (a reinterpreted `uint8` array, say), and reading that as `bool` would be undefined
/// behaviour. `Bool` accepts every byte and reads nonzero as true, like NumPy.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Bool(pub u8);

impl Bool {
    /// The truth value: any nonzero byte is true.
    pub const fn get(self) -> bool {
        self.0 != 0
    }
}

impl From<bool> for Bool {
    fn from(b: bool) -> Self {
        Bool(u8::from(b))
    }
}

impl fmt::Debug for Bool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that is the element of one [`DType`].
///
/// Sealed: the Python bridge reinterprets foreign memory as `T` after checking only
/// `T::DTYPE`, so the mapping must be exactly the ten implementations below. `Pod`
/// guarantees that every bit pattern is a valid value.
pub trait Element:
    bytemuck::Pod + Send + Sync + PartialEq + fmt::Debug + sealed::Sealed + 'static
{
    /// The dtype tag of this type.
    const DTYPE: DType;
}

macro_rules! impl_element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}

impl_element!(
    f32 => Float32,
    f64 => Float64,
    half::f16 => Float16,
    half::bf16 => BFloat16,
    i8 => Int8,
    i16 => Int16,
    i32 => Int32,
    i64 => Int64,
    u8 => UInt8,
    Bool => Bool,
);

/// Runs `$body` with the type alias `$T` bound to the Rust element type of `$dtype`.
///
/// ```
/// use rt_view::{dispatch_dtype, DType};
/// let size = dispatch_dtype!(DType::Float16, T => std::mem::size_of::<T>());
/// assert_eq!(size, 2);
/// ```
#[macro_export]
macro_rules! dispatch_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::Float32 => {
                type $T = f32;
                $body
            }
            $crate::DType::Float64 => {
                type $T = f64;
                $body
            }
            $crate::DType::Float16 => {
                type $T = $crate::half::f16;
                $body
            }
            $crate::DType::BFloat16 => {
                type $T = $crate::half::bf16;
                $body
            }
            $crate::DType::Int8 => {
                type $T = i8;
                $body
            }
            $crate::DType::Int16 => {
                type $T = i16;
                $body
            }
            $crate::DType::Int32 => {
                type $T = i32;
                $body
            }
            $crate::DType::Int64 => {
                type $T = i64;
                $body
            }
            $crate::DType::UInt8 => {
                type $T = u8;
                $body
            }
            $crate::DType::Bool => {
                type $T = $crate::Bool;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itemsize_matches_rust_type() {
        for d in DType::ALL {
            let size = dispatch_dtype!(d, T => std::mem::size_of::<T>());
            assert_eq!(size, d.itemsize(), "{d}");
            let tag = dispatch_dtype!(d, T => <T as Element>::DTYPE);
            assert_eq!(tag, d);
        }
    }

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("complex64"), None);
    }

    #[test]
    fn bool_reads_any_nonzero_byte_as_true() {
        assert!(Bool(7).get());
        assert!(!Bool(0).get());
        assert_eq!(Bool::from(true), Bool(1));
    }
}
