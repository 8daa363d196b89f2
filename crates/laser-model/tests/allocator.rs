//! The allocator settings in a process of their own (resident memory is process-wide, so no other
//! test may allocate beside this one): freed buffers stay resident under
//! `retain_freed_memory`, and `release_freed_memory` gives them back.

/// Resident pages of this process, in bytes (`/proc/self/statm`'s second field).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm");
    // SAFETY: `sysconf` only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).expect("a page size")
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn kept_memory_is_released_between_phases() {
    use laser_model::allocator::{release_freed_memory, retain_freed_memory};
    assert!(retain_freed_memory());
    const MB: usize = 1 << 20;
    // 256 one-megabyte buffers (below the mmap threshold: heap blocks), every page written.
    let buffers: Vec<Vec<u8>> = (0..256).map(|i| vec![(i % 251) as u8 + 1; MB]).collect();
    let touched: usize = buffers.iter().map(|b| usize::from(b[MB / 2])).sum();
    assert!(touched > 0);
    let live = resident_bytes();
    drop(buffers);
    let kept = resident_bytes();
    // Kept for reuse: freeing returned (almost) nothing to the kernel.
    assert!(kept + 32 * MB > live, "freed memory was not kept: {live} → {kept} bytes");
    assert!(release_freed_memory(), "nothing released");
    let released = resident_bytes();
    assert!(released + 200 * MB < kept, "resident {kept} → {released} bytes after release");
}

#[test]
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_is_a_no_op_elsewhere() {
    assert!(!laser_model::allocator::release_freed_memory());
}
