#![doc = include_str!("../README.md")]
//!
//! ## This crate
//!
//! A facade re-exporting the workspace crates, so that users depend on one package:
//! - [`linalg`]: thin / partial / randomized SVD, σ-gradients, truncation, row clustering.
//! - [`model`]: transformers in burn — loading, forward, backward, matrix editing, export.
//! - [`search`]: tasks, metrics, the evaluation engine and the search strategies.
//! - `fuzzing` (cargo feature `fuzzing`): untrusted-bytes entry points for the fuzz targets and
//!   mutation tests.

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use laser_linalg as linalg;
pub use laser_model as model;
pub use laser_search as search;
