//! The DLPack C ABI (<https://dmlc.github.io/dlpack/latest/c_api.html>): just the structs
//! and constants rusttorch needs, versions 0.x (`DLManagedTensor`) and 1.x
//! (`DLManagedTensorVersioned`).
//!
//! Written here rather than taken from a crate because the structs are a fixed,
//! twenty-line ABI while the Rust DLPack crates pin their own PyO3 versions; one PyO3 for
//! the whole workspace matters more.

use std::ffi::{CStr, c_void};

use crate::DType;

/// `DLDeviceType::kDLCPU`.
pub const DEVICE_CPU: i32 = 1;

/// Name of an unconsumed legacy capsule.
pub const CAPSULE_LEGACY: &CStr = c"dltensor";
/// Name a consumer gives a legacy capsule it has taken ownership of.
pub const CAPSULE_LEGACY_USED: &CStr = c"used_dltensor";
/// Name of an unconsumed versioned (DLPack >= 1.0) capsule.
pub const CAPSULE_VERSIONED: &CStr = c"dltensor_versioned";
/// Name a consumer gives a versioned capsule it has taken ownership of.
pub const CAPSULE_VERSIONED_USED: &CStr = c"used_dltensor_versioned";

/// `DLPACK_FLAG_BITMASK_READ_ONLY`: the consumer must not write.
pub const FLAG_READ_ONLY: u64 = 1 << 0;

/// The DLPack version rusttorch produces and asks producers for.
pub const VERSION: DLPackVersion = DLPackVersion { major: 1, minor: 0 };

/// `DLDevice`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DLDevice {
    /// `DLDeviceType`.
    pub device_type: i32,
    /// Ordinal of the device.
    pub device_id: i32,
}

/// `DLDataType`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLDataType {
    /// `DLDataTypeCode`: 0 int, 1 uint, 2 float, 4 bfloat, 6 bool, ...
    pub code: u8,
    /// Bits per lane.
    pub bits: u8,
    /// Lanes per element (1 for scalars).
    pub lanes: u16,
}

/// `DLTensor`.
#[repr(C)]
#[derive(Debug)]
pub struct DLTensor {
    /// Base data pointer; element `[0, ...]` is at `data + byte_offset`.
    pub data: *mut c_void,
    /// Where the data lives.
    pub device: DLDevice,
    /// Number of dimensions.
    pub ndim: i32,
    /// Element type.
    pub dtype: DLDataType,
    /// `ndim` extents.
    pub shape: *mut i64,
    /// `ndim` strides in elements, or null for compact row-major (DLPack < 1.2).
    pub strides: *mut i64,
    /// Offset of element `[0, ...]` from `data`, in bytes.
    pub byte_offset: u64,
}

/// `DLManagedTensor` (legacy, unversioned).
#[repr(C)]
#[derive(Debug)]
pub struct DLManagedTensor {
    /// The tensor.
    pub dl_tensor: DLTensor,
    /// Producer's context.
    pub manager_ctx: *mut c_void,
    /// Frees the tensor; called once by the consumer.
    pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// `DLPackVersion`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DLPackVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

/// `DLManagedTensorVersioned` (DLPack >= 1.0).
#[repr(C)]
#[derive(Debug)]
pub struct DLManagedTensorVersioned {
    /// The ABI version of this struct.
    pub version: DLPackVersion,
    /// Producer's context.
    pub manager_ctx: *mut c_void,
    /// Frees the tensor; called once by the consumer.
    pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    /// `FLAG_READ_ONLY` and friends.
    pub flags: u64,
    /// The tensor.
    pub dl_tensor: DLTensor,
}

/// The DLPack type of a rusttorch dtype.
pub fn dl_dtype(dtype: DType) -> DLDataType {
    let code = match dtype {
        DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64 => 0,
        DType::UInt8 => 1,
        DType::Float32 | DType::Float64 | DType::Float16 => 2,
        DType::BFloat16 => 4,
        DType::Bool => 6,
    };
    DLDataType {
        code,
        bits: (dtype.itemsize() * 8) as u8,
        lanes: 1,
    }
}

/// The rusttorch dtype of a DLPack type, or `None` if rusttorch does not support it.
pub fn from_dl_dtype(dt: DLDataType) -> Option<DType> {
    if dt.lanes != 1 {
        return None;
    }
    Some(match (dt.code, dt.bits) {
        (0, 8) => DType::Int8,
        (0, 16) => DType::Int16,
        (0, 32) => DType::Int32,
        (0, 64) => DType::Int64,
        (1, 8) => DType::UInt8,
        (2, 16) => DType::Float16,
        (2, 32) => DType::Float32,
        (2, 64) => DType::Float64,
        (4, 16) => DType::BFloat16,
        (6, 8) => DType::Bool,
        _ => return None,
    })
}

/// A readable name for a DLPack type rusttorch does not support, for error messages.
pub fn describe_dl_dtype(dt: DLDataType) -> String {
    let kind = match dt.code {
        0 => "int",
        1 => "uint",
        2 => "float",
        3 => "opaque",
        4 => "bfloat",
        5 => "complex",
        6 => "bool",
        _ => "code",
    };
    if dt.lanes == 1 {
        format!("{kind}{}", dt.bits)
    } else {
        format!("{kind}{}x{}", dt.bits, dt.lanes)
    }
}

/// The name of a DLPack device type, for error messages.
pub fn device_name(device: DLDevice) -> String {
    let kind = match device.device_type {
        1 => "cpu",
        2 => "cuda",
        3 => "cuda_host",
        4 => "opencl",
        7 => "vulkan",
        8 => "metal",
        9 => "vpi",
        10 => "rocm",
        11 => "rocm_host",
        13 => "cuda_managed",
        14 => "oneapi",
        15 => "webgpu",
        16 => "hexagon",
        17 => "maia",
        other => return format!("device type {other}"),
    };
    if device.device_type == DEVICE_CPU {
        kind.to_owned()
    } else {
        format!("{kind}:{}", device.device_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_codes_round_trip() {
        for d in DType::ALL {
            assert_eq!(from_dl_dtype(dl_dtype(d)), Some(d));
        }
        let complex = DLDataType {
            code: 5,
            bits: 64,
            lanes: 1,
        };
        assert_eq!(from_dl_dtype(complex), None);
        assert_eq!(describe_dl_dtype(complex), "complex64");
    }

    #[test]
    fn struct_layouts_match_the_c_abi() {
        // Sizes from dlpack.h on 64-bit targets.
        assert_eq!(std::mem::size_of::<DLTensor>(), 48);
        assert_eq!(std::mem::size_of::<DLManagedTensor>(), 64);
        assert_eq!(std::mem::size_of::<DLManagedTensorVersioned>(), 80);
    }
}
