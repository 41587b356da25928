//! Where a command may give freed memory back to the system (issue #15). The library marks
//! the places; the binary, which may call the allocator (the library has no `unsafe`), says
//! how, once, with [`on_give_back`].

use std::sync::OnceLock;

static GIVE_BACK: OnceLock<fn()> = OnceLock::new();

/// Sets what [`give_back_freed`] calls; the first call wins.
pub fn on_give_back(f: fn()) {
    let _ = GIVE_BACK.set(f);
}

/// Gives the memory freed so far back to the system, at a phase boundary after which other
/// threads allocate afresh: glibc keeps freed blocks in the arena of the thread that freed
/// them, and threads allocating from other arenas do not reuse them (export's final
/// verification grew new memory beside what staging had freed). Does nothing unless the
/// binary said how ([`on_give_back`]).
pub fn give_back_freed() {
    if let Some(f) = GIVE_BACK.get() {
        f();
    }
}
