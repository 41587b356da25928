//! The allocator tunables and calls the commands use to keep peak RSS near what they hold
//! (issue #15). glibc only; elsewhere each is a no-op.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;
    extern "C" {
        /// Sets an allocator tunable (malloc.h).
        pub fn mallopt(param: c_int, value: c_int) -> c_int;
        /// Returns the free pages of every arena to the system (malloc.h).
        pub fn malloc_trim(pad: usize) -> c_int;
    }
    /// malloc.h's `M_MMAP_THRESHOLD`.
    pub const M_MMAP_THRESHOLD: c_int = -3;
}

/// Has the allocator give blocks of 32 KiB and more their own mappings, returned when freed.
/// `plan`, `import` and `diff` read one bundle entry per object — a zip entry's inflate state
/// and input buffer, some 100 KiB, allocated and freed each time — while they keep a little
/// for every object: with the default threshold (128 KiB, raised further by every large block
/// freed) those buffers came from the heap, the small blocks kept in between split the holes
/// they left, and the next buffers needed new memory, so that peak RSS grew twice as fast as
/// what the commands held (563 MiB resident for 287 MiB of heap at 106,000 objects, 317 MiB
/// with this). Costs two system calls a read. Call before the command starts threads.
pub fn map_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; the caller has started no
    // threads; any value up to 32 MiB is valid for M_MMAP_THRESHOLD.
    unsafe {
        glibc::mallopt(glibc::M_MMAP_THRESHOLD, 32 * 1024);
    }
}

/// Returns the free pages of every arena to the system: what
/// [`dbxport::memory::give_back_freed`] does in this binary.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' locks itself and only releases free pages.
    unsafe {
        glibc::malloc_trim(0);
    }
}
