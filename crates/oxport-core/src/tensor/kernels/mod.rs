//! Raw CPU kernels on typed data: pointwise loops, reductions, matmul (gemm), convolution, pooling,
//! fusable activations.
//! They know nothing about schemas or dispatch; `crate::ops` calls them.
pub mod activation;
pub mod conv;
pub mod elementwise;
pub mod matmul;
pub mod pool;
pub mod reduce;
