//! Physical memory: a frame allocator over the multiboot memory map, and the kernel heap
//! (a size-class allocator over a contiguous run of frames; memory is identity-mapped).
use core::alloc::{GlobalAlloc, Layout};

pub const FRAME: u64 = 4096;
const MAX_REGIONS: usize = 32;
/// Everything above 4 GiB is unmapped (boot.s maps 4 GiB), so frames stay below.
const MAPPED_END: u64 = 1 << 32;

#[derive(Clone, Copy)]
struct Region { next: u64, end: u64 }

pub struct Frames { regions: [Region; MAX_REGIONS], n: usize, free_list: u64, pub usable_bytes: u64 }

pub static mut FRAMES: Frames = Frames { regions: [Region { next: 0, end: 0 }; MAX_REGIONS], n: 0, free_list: 0, usable_bytes: 0 };

extern "C" { static __kernel_end: u8; }

impl Frames {
    /// Reads the multiboot v1 memory map (flags bit 6) and keeps every usable (type 1) region
    /// above the kernel image and below 4 GiB, trimmed to whole frames.
    pub unsafe fn init(&mut self, mbi: u64) -> Result<(), &'static str> {
        let flags = *(mbi as *const u32);
        if flags & (1 << 6) == 0 { return Err("no memory map from the boot loader") }
        let len = *((mbi + 44) as *const u32) as u64;
        let addr = *((mbi + 48) as *const u32) as u64;
        let kend = (&raw const __kernel_end as u64 + FRAME - 1) & !(FRAME - 1);
        let mut p = addr;
        while p < addr + len {
            let size = *(p as *const u32) as u64;
            let base = core::ptr::read_unaligned((p + 4) as *const u64);
            let length = core::ptr::read_unaligned((p + 12) as *const u64);
            let kind = core::ptr::read_unaligned((p + 20) as *const u32);
            p += size + 4;
            if kind != 1 { continue }
            let mut start = (base + FRAME - 1) & !(FRAME - 1);
            let mut end = (base + length) & !(FRAME - 1);
            // Keep clear of the image, the boot loader's structures below 1 MiB, and the
            // multiboot info/module area right after the image (GRUB puts it there).
            if start < kend { start = kend }
            if end > MAPPED_END { end = MAPPED_END }
            if start >= end || self.n == MAX_REGIONS { continue }
            self.regions[self.n] = Region { next: start, end };
            self.n += 1;
            self.usable_bytes += end - start;
        }
        if self.n == 0 { Err("no usable memory above the kernel") } else { Ok(()) }
    }

    /// One frame: a freed one first, else the next from a region.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free_list != 0 {
            let f = self.free_list;
            self.free_list = unsafe { *(f as *const u64) };
            return Some(f);
        }
        self.alloc_contiguous(1)
    }
    pub fn free(&mut self, f: u64) { unsafe { *(f as *mut u64) = self.free_list }; self.free_list = f; }

    /// `n` physically contiguous frames (from the region with the most room), or None.
    pub fn alloc_contiguous(&mut self, n: u64) -> Option<u64> {
        let want = n * FRAME;
        let mut best: Option<usize> = None;
        for i in 0..self.n {
            let r = self.regions[i];
            if r.end - r.next >= want && best.map_or(true, |b| r.end - r.next > self.regions[b].end - self.regions[b].next) { best = Some(i) }
        }
        let i = best?;
        let f = self.regions[i].next;
        self.regions[i].next += want;
        Some(f)
    }
    pub fn largest_run(&self) -> u64 { (0..self.n).map(|i| self.regions[i].end - self.regions[i].next).max().unwrap_or(0) / FRAME }
}

/// Size classes 2^4 .. 2^26; blocks of a class are carved from a bump region (aligned to
/// min(size, 4096)) and recycled through a per-class free list. Single core, interrupts off:
/// no lock. Payloads are ≤ 1 MiB, so classes never waste more than 2x.
const CLASSES: usize = 27;
pub struct Heap { bump: u64, end: u64, free: [u64; CLASSES], pub used: u64 }
pub struct KernelAlloc(pub core::cell::UnsafeCell<Heap>);
unsafe impl Sync for KernelAlloc {}

#[global_allocator]
pub static HEAP: KernelAlloc = KernelAlloc(core::cell::UnsafeCell::new(Heap { bump: 0, end: 0, free: [0; CLASSES], used: 0 }));

pub fn init_heap(start: u64, bytes: u64) { unsafe { let h = &mut *HEAP.0.get(); h.bump = start; h.end = start + bytes; } }
pub fn heap_stats() -> (u64, u64) { unsafe { let h = &*HEAP.0.get(); (h.used, h.end - h.bump) } }

fn class_of(l: Layout) -> usize {
    let s = l.size().max(l.align()).max(16);
    (usize::BITS - (s - 1).leading_zeros()) as usize
}

unsafe impl GlobalAlloc for KernelAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let h = &mut *self.0.get();
        let c = class_of(l);
        if c >= CLASSES || l.align() > 4096 { return core::ptr::null_mut() }
        let size = 1u64 << c;
        if h.free[c] != 0 {
            let b = h.free[c];
            h.free[c] = *(b as *const u64);
            h.used += size;
            return b as *mut u8;
        }
        let a = size.min(4096);
        let b = (h.bump + a - 1) & !(a - 1);
        if b + size > h.end { return core::ptr::null_mut() }
        h.bump = b + size;
        h.used += size;
        b as *mut u8
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let h = &mut *self.0.get();
        let c = class_of(l);
        *(p as *mut u64) = h.free[c];
        h.free[c] = p as u64;
        h.used -= 1 << c;
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let nl = Layout::from_size_align_unchecked(new, l.align());
        if class_of(nl) == class_of(l) { return p }
        let q = self.alloc(nl);
        if !q.is_null() {
            core::ptr::copy_nonoverlapping(p, q, l.size().min(new));
            self.dealloc(p, l);
        }
        q
    }
}
