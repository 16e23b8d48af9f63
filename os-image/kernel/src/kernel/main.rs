//! The Orbital guest kernel: boots from multiboot (QEMU -kernel or GRUB), sets up long mode,
//! exceptions, memory and drivers, then runs the kernel-link server over virtio-console when
//! there is one, else over COM1. Built by ../../build.mjs as a staticlib and linked with ld.
#![no_std]
#![allow(static_mut_refs)]

extern crate alloc;
extern crate orbital;

pub mod arch;
pub mod serial;
pub mod time;
pub mod mem;

use core::arch::asm;

/// Boot stage line: `[   12.345 ms] text` with time since power-on.
#[macro_export]
macro_rules! stage {
    ($($t:tt)*) => {{
        let us = $crate::time::micros();
        $crate::kprint!("[{:5}.{:03} ms] ", us / 1000, us % 1000);
        $crate::kprintln!($($t)*);
    }}
}

unsafe fn cmdline(mbi: u64) -> &'static [u8] {
    let flags = *(mbi as *const u32);
    if flags & (1 << 2) == 0 { return b"" }
    let p = *((mbi + 16) as *const u32) as *const u8;
    let mut n = 0;
    while n < 4096 && *p.add(n) != 0 { n += 1 }
    core::slice::from_raw_parts(p, n)
}

fn has_word(line: &[u8], w: &[u8]) -> bool { line.split(|&b| b == b' ').any(|x| x == w) }

#[no_mangle]
pub extern "C" fn kmain(magic: u32, mbi: u32) -> ! {
    serial::init();
    time::calibrate();
    stage!("orbital kernel: long mode, SSE on (tsc {} MHz)", time::tsc_per_us());
    if magic != 0x2BADB002 {
        kprintln!("CRASH not started by a multiboot loader (magic {:#x})", magic);
        arch::exit_qemu(arch::EXIT_CRASH);
    }
    arch::init_cpu_tables();
    stage!("cpu: GDT, TSS, IDT with IST stacks");
    let cmd = unsafe { cmdline(mbi as u64) };
    if has_word(cmd, b"fault=page") {
        stage!("fault hook: touching unmapped 0x100000000");
        unsafe { core::ptr::read_volatile(0x1_0000_0000 as *const u64) };
    }
    let frames = unsafe { &mut mem::FRAMES };
    if let Err(e) = unsafe { frames.init(mbi as u64) } { panic!("memory: {}", e) }
    // The heap takes most of the largest run; a few MiB stay for device rings.
    let run = frames.largest_run();
    let heap_frames = run.saturating_sub(1024).max(run / 2);
    let heap = frames.alloc_contiguous(heap_frames).expect("heap frames");
    mem::init_heap(heap, heap_frames * mem::FRAME);
    stage!("memory: {} MiB usable, heap {} MiB at {:#x}", frames.usable_bytes >> 20, (heap_frames * mem::FRAME) >> 20, heap);
    let mut v = alloc::vec::Vec::new();
    for i in 0..1000u32 { v.push(i) }
    stage!("heap ok ({} items)", v.len());
    stage!("ready");
    loop {
        if let Some(b) = serial::read_byte() { serial::write_byte(b) }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kprintln!("CRASH panic: {}", info);
    arch::exit_qemu(arch::EXIT_CRASH)
}

/// The precompiled libcore was built for unwinding and references this; we abort instead.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! { arch::exit_qemu(arch::EXIT_CRASH) }

// memcpy & co. as string instructions, so LLVM cannot turn them back into calls to themselves.
#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _, options(nostack, preserves_flags));
    d
}
#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) <= (s as usize) || (d as usize) >= (s as usize) + n {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _, options(nostack, preserves_flags));
    } else if n > 0 {
        asm!("std", "rep movsb", "cld", inout("rcx") n => _, inout("rdi") d.add(n - 1) => _, inout("rsi") s.add(n - 1) => _, options(nostack));
    }
    d
}
#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    asm!("rep stosb", inout("rcx") n => _, inout("rdi") d => _, in("al") c as u8, options(nostack, preserves_flags));
    d
}
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 { return 0 }
    let (pa, pb): (*const u8, *const u8);
    asm!("repe cmpsb", inout("rcx") n => _, inout("rsi") a => pa, inout("rdi") b => pb, options(nostack, readonly));
    let (x, y) = (*pa.sub(1), *pb.sub(1));
    x as i32 - y as i32
}
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 { memcmp(a, b, n) }
