//! A counting global allocator for the master's unit-test binary: it
//! forwards to the system allocator and keeps, per thread, the bytes and
//! allocations currently live. Per thread, so tests running in parallel do
//! not disturb each other's figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Const-initialised and without a destructor: usable from inside the
    // allocator at any time without allocating.
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
    static LIVE_ALLOCS: Cell<i64> = const { Cell::new(0) };
    static LIVE_CHUNKS: Cell<i64> = const { Cell::new(0) };
}

/// What glibc's malloc really takes for a request of `size` bytes on 64-bit
/// Linux: 8 bytes of header, rounded up to 16, at least 32.
fn chunk(size: usize) -> i64 {
    ((size + 8 + 15) & !15).max(32) as i64
}

fn add(bytes: i64, allocs: i64, chunks: i64) {
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + bytes));
    let _ = LIVE_ALLOCS.try_with(|c| c.set(c.get() + allocs));
    let _ = LIVE_CHUNKS.try_with(|c| c.set(c.get() + chunks));
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// plain thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64, 1, chunk(layout.size()));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64), -1, -chunk(layout.size()));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64, 1, chunk(layout.size()));
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(
            new_size as i64 - layout.size() as i64,
            0,
            chunk(new_size) - chunk(layout.size()),
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What is live on this thread (allocated here and not yet freed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    /// Bytes requested.
    pub bytes: i64,
    /// Allocations.
    pub allocs: i64,
    /// Bytes glibc's malloc would hold for them (see [`chunk`]).
    pub malloc_bytes: i64,
}

pub(crate) fn live() -> Live {
    Live {
        bytes: LIVE_BYTES.try_with(Cell::get).unwrap_or(0),
        allocs: LIVE_ALLOCS.try_with(Cell::get).unwrap_or(0),
        malloc_bytes: LIVE_CHUNKS.try_with(Cell::get).unwrap_or(0),
    }
}
