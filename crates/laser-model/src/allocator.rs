//! Keeps freed activation buffers in the process instead of handing them back to the kernel.
//!
//! A forward pass allocates and frees the same few large buffers (a batch's activations, 1–30 MB
//! each) in every layer. glibc's malloc returns such blocks to the kernel — `mmap`/`munmap` past
//! its dynamic threshold, or trimming the top of the heap — so every layer pays page faults and
//! zeroing on fresh pages: a quarter of `laser eval`'s time on SmolLM2 went to the kernel
//! (`docs/BENCHMARKS.md`, issue 18). [`retain_freed_memory`] tells glibc to serve those sizes from
//! its heap and to keep freed memory for reuse. Freed blocks are reused, not added to, so the peak
//! grows only by the top pad and fragmentation (+37 to +49 MB measured on runs peaking at 1 and
//! 5.6 GB); memory freed after the peak goes back to the kernel only when the process ends.
//!
//! The setting is process-wide, so the library never applies it on its own: the `laser` command
//! and the benchmarks call it first thing; a program embedding the engine may do the same.
//!
//! What a phase kept is reused by the next only where the sizes fit: blocks above the `mmap`
//! threshold are always fresh mappings, on top of the kept heap. On Gemma 3's long-prefix suite
//! task the gradient pass kept ~3 GB that the test split then added its own blocks to (a peak
//! 1.2 GB over the default target, `docs/RESULTS.md`). [`release_freed_memory`] hands what is free
//! back between phases; the search calls it before and after the gradient pass and before the
//! test split, where the working set changes shape, so the peak is one phase's, not their sum.

/// Blocks up to this size come from the heap, not from `mmap`: above the largest activation of a
/// default 4096-token batch on the default model (4096 × 1536 f32 = 25 MB). Larger blocks — a
/// large model's activations, weights — keep glibc's `mmap` path and go back when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Freed memory at the top of the heap is kept up to this much (the largest `c_int`, i.e. never
/// trimmed in practice) …
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = libc::c_int::MAX;

/// … and the heap grows by this much beyond each request, so that growing it is rare.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TOP_PAD: libc::c_int = 64 << 20;

/// Asks the C allocator to keep freed buffers for reuse (see the module documentation).
/// Returns whether the settings took effect: `false` on allocators other than glibc's, where it
/// does nothing.
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only sets allocator parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
                && libc::mallopt(libc::M_TOP_PAD, TOP_PAD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Hands the memory the C allocator keeps free back to the kernel (glibc's `malloc_trim`, which
/// also releases whole free pages inside the heap and in every thread's arena). Live allocations
/// are untouched; the next allocations fault their pages in again. Returns whether anything was
/// released: always `false` on allocators other than glibc's, where it does nothing.
pub fn release_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only returns free memory to the kernel; it is safe at any time.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mallopt` refuses a value out of its range and keeps the old setting; every value here
    /// must be one glibc accepts.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_every_setting() {
        assert!(retain_freed_memory());
    }
}
