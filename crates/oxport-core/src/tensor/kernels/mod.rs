//! Raw CPU kernels on typed data: pointwise loops, reductions, matmul (gemm), convolution, pooling,
//! activations fusable into kernel epilogues.
//! `vmath` holds vectorised f32 math, compiled per instruction set and picked at run time by `simd`.
//! They know nothing about schemas or op dispatch; `crate::ops` calls them.
pub mod activation;
pub mod attention;
pub mod conv;
pub mod conv_packed;
pub mod elementwise;
pub mod matmul;
pub mod pool;
pub mod reduce;
pub mod sgemm;
pub mod simd;
pub mod vmath;
