//! The Python bridge (feature `python`): borrow torch tensors, NumPy arrays and any DLPack
//! or buffer-protocol object as rt-view views, and hand results back as torch tensors,
//! without copying. Every rusttorch extension module uses these.

mod cache_functions;
pub mod dlpack;
mod errors;
mod gil;
mod input;
mod interrupt;
mod output;
mod thread_functions;
mod torch_api;

#[cfg(feature = "extension")]
mod module;

pub use cache_functions::add_output_cache_functions;
pub use gil::run_released;
pub use input::{Access, PyTensor, Source};
pub use interrupt::{SIGNAL_POLL_INTERVAL, run_interruptible};
pub use output::{check_out, owned_to_torch, share_with_torch, torch_empty};
pub use thread_functions::{_thread_env_problem, add_thread_functions};
pub use torch_api::{TorchApi, is_torch_tensor, torch};
