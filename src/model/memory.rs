//! How the model's memory is allocated while it loads.
//!
//! glibc's malloc serves an allocation from its heap unless it is at least the *mmap threshold*,
//! which starts at 128 KiB and rises to the size of every mapped block freed (up to 32 MiB).
//! Loading frees a weight-sized block after nearly every tensor (the buffer a tensor was read
//! into once it is transposed, fused or converted), so after the first few the threshold sits at
//! 16 MiB and later weights land in the heap between freed blocks that can't be given back: on
//! ViT-L/14 that measured about 130 MiB resident for nothing (1.64 GB peak for `locate` instead
//! of 1.51 GB). While [`LoadAllocations`] is alive the threshold is 1 MiB, so every weight
//! buffer is a mapping of its own and a freed one goes straight back to the system; afterwards
//! it is 32 MiB (where glibc's own rule ends up), so the forward pass reuses its activation
//! buffers from the heap instead of mapping fresh pages for each.
//!
//! Elsewhere (other C libraries, Windows, macOS) this does nothing.

/// Allocations of at least this many bytes get their own mapping while the model loads.
pub const LOAD_MMAP_THRESHOLD: usize = 1 << 20;
/// The threshold after loading: glibc's `DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit systems.
pub const RUN_MMAP_THRESHOLD: usize = 32 << 20;

/// Big allocations mapped one by one until dropped (the module's notes say why).
#[must_use = "the policy ends when this is dropped"]
pub struct LoadAllocations(());

impl LoadAllocations {
    pub fn begin() -> Self {
        set_mmap_threshold(LOAD_MMAP_THRESHOLD);
        Self(())
    }
}

impl Drop for LoadAllocations {
    fn drop(&mut self) {
        set_mmap_threshold(RUN_MMAP_THRESHOLD);
    }
}

/// Sets glibc's mmap threshold (which also stops it moving by itself); true when it took.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_mmap_threshold(bytes: usize) -> bool {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes malloc's tuning parameters; it is thread-safe and takes no
    // pointers.
    #[allow(unsafe_code)]
    let done = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, bytes) };
    done == 1
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_mmap_threshold(_bytes: usize) -> bool {
    false
}

/// Asks for transparent huge pages under `buffer` before it is first written (Linux, where
/// THP is in `madvise` mode, as on most distributions): a weight buffer then faults in 2 MiB at a
/// time instead of 4 KiB. Only the 2 MiB-aligned part of the buffer is eligible; a refusal
/// (THP off, another system) changes nothing but speed.
pub fn advise_huge_pages(buffer: &mut [f32]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buffer.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(buffer);
        let aligned_start = start.next_multiple_of(HUGE);
        let aligned_end = end / HUGE * HUGE;
        if aligned_end > aligned_start {
            // SAFETY: the range lies inside `buffer`, which this function borrows mutably;
            // MADV_HUGEPAGE only changes how the kernel backs those pages, never their contents.
            #[allow(unsafe_code)]
            unsafe {
                libc::madvise(
                    aligned_start as *mut libc::c_void,
                    aligned_end - aligned_start,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_accepted_where_there_is_glibc() {
        let took = set_mmap_threshold(LOAD_MMAP_THRESHOLD);
        assert_eq!(took, cfg!(all(target_os = "linux", target_env = "gnu")));
        assert_eq!(
            set_mmap_threshold(RUN_MMAP_THRESHOLD),
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
    }

    /// Advising leaves the values alone, on buffers smaller and larger than a huge page.
    #[test]
    fn advising_huge_pages_keeps_the_values() {
        for len in [0, 3, 1 << 20, (5 << 20) / 4 + 7] {
            let mut buffer: Vec<f32> = (0..len).map(|i| i as f32).collect();
            advise_huge_pages(&mut buffer);
            assert!(
                buffer.iter().enumerate().all(|(i, &v)| v == i as f32),
                "{len}"
            );
        }
    }
}
