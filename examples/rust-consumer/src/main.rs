//! Uses rt-view as a plain Rust library: borrow a buffer as a strided tensor view,
//! transpose it without copying, reduce it, and watch a bad stride get rejected.

use std::error::Error;

use rt_view::threads::get_num_threads;
use rt_view::{OwnedTensor, TensorView};

fn main() -> Result<(), Box<dyn Error>> {
    // A 2x3 matrix over a borrowed buffer, row-major.
    let data: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let matrix = TensorView::from_slice(&data, &[2, 3])?;
    println!(
        "matrix:     shape {:?}, strides {:?}, contiguous: {}",
        matrix.shape(),
        matrix.strides(),
        matrix.is_contiguous()
    );

    // Transposing swaps shape and strides; the data is not touched.
    let transposed = matrix.transpose(0, 1)?;
    let elements: Vec<String> = transposed.iter().map(|x| x.to_string()).collect();
    println!(
        "transposed: shape {:?}, strides {:?}, contiguous: {}, elements [{}]",
        transposed.shape(),
        transposed.strides(),
        transposed.is_contiguous(),
        elements.join(", ")
    );
    let sum: f32 = transposed.iter().sum();
    println!("sum of the transposed view: {sum}");

    // Shape [2, 3] with strides [3, 2] would reach element 1*3 + 2*2 = 7 of a 6-element
    // buffer: the constructor refuses instead of reading out of bounds.
    match TensorView::new(&data, &[2, 3], &[3, 2], 0) {
        Ok(_) => return Err("an out-of-bounds view was accepted".into()),
        Err(error) => println!("out-of-bounds strides rejected: {error}"),
    }

    // An owned (64-byte aligned) tensor, filled in place, then viewed.
    let mut owned = OwnedTensor::<f32>::zeros(&[4])?;
    for (i, x) in owned.as_mut_slice().iter_mut().enumerate() {
        *x = i as f32;
    }
    let owned_sum: f32 = owned.view().iter().sum();
    println!("owned tensor sum: {owned_sum}");

    println!("rt-view thread pool: {} threads", get_num_threads());
    Ok(())
}
