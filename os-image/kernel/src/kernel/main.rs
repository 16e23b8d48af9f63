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
pub mod pci;
pub mod virtio;

use alloc::vec::Vec;
use core::arch::asm;
use orbital::link::Server;

/// Boot stage line: `[   12.345 ms] text` with time since power-on.
#[macro_export]
macro_rules! stage {
    ($($t:tt)*) => {{
        let us = $crate::time::micros();
        $crate::kprint!("[{:5}.{:03} ms] ", us / 1000, us % 1000);
        $crate::kprintln!($($t)*);
    }}
}

pub const OS_NAME: &str = "orbital-guest 0.1";
/// Largest frame payload the kernel accepts: any proposal the sequencer may commit fits.
const MAX_FRAME: usize = 1_048_576 + 4096;

// Console routing. Single core, interrupts off: plain statics.
static mut HEAP_READY: bool = false;
/// Where console text goes: false = straight to COM1 (no link on COM1 yet, or COM1 is a plain
/// console beside a virtio link); true = into the link's console stream (through CONSOLE_BUF).
static mut CONSOLE_VIA_LINK: bool = false;
static mut LINK_ON_SERIAL: bool = false;
static mut CONSOLE_BUF: Vec<u8> = Vec::new();
/// Boot text, replayed into a virtio link once it is up (COM1 already showed it).
static mut BOOT_TEXT: Vec<u8> = Vec::new();

pub fn console_write(b: &[u8]) {
    unsafe {
        if CONSOLE_VIA_LINK {
            CONSOLE_BUF.extend_from_slice(b);
            if !LINK_ON_SERIAL { serial::write(b) }
            return;
        }
        for &x in b { serial::write_byte(x); if x == 0xFF { serial::write_byte(0) } }
        if HEAP_READY && BOOT_TEXT.len() < 64 * 1024 { BOOT_TEXT.extend_from_slice(b) }
    }
}

static mut CMDLINE: [u8; 1024] = [0; 1024];

/// The kernel command line, copied out of the boot loader's memory before the heap may reuse it.
unsafe fn cmdline(mbi: u64) -> &'static [u8] {
    let flags = *(mbi as *const u32);
    if flags & (1 << 2) == 0 { return b"" }
    let p = *((mbi + 16) as *const u32) as *const u8;
    let buf = &mut *(&raw mut CMDLINE);
    let mut n = 0;
    while n < buf.len() && *p.add(n) != 0 { buf[n] = *p.add(n); n += 1 }
    &buf[..n]
}

fn has_word(line: &[u8], w: &[u8]) -> bool { line.split(|&b| b == b' ').any(|x| x == w) }
fn opt<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    line.split(|&b| b == b' ').find_map(|x| if x.len() > key.len() && x.starts_with(key) && x[key.len()] == b'=' { Some(&x[key.len() + 1..]) } else { None })
}
fn opt_num(line: &[u8], key: &[u8]) -> Option<u64> {
    let v = opt(line, key)?;
    if v.is_empty() || !v.iter().all(|c| c.is_ascii_digit()) { return None }
    Some(v.iter().fold(0u64, |a, &c| a.saturating_mul(10).saturating_add((c - b'0') as u64)))
}
fn opt_hex16(line: &[u8], key: &[u8]) -> Option<[u8; 16]> {
    let v = opt(line, key)?;
    if v.len() != 32 { return None }
    let mut out = [0u8; 16];
    for i in 0..16 {
        let d = |c: u8| match c { b'0'..=b'9' => Some(c - b'0'), b'a'..=b'f' => Some(c - b'a' + 10), b'A'..=b'F' => Some(c - b'A' + 10), _ => None };
        out[i] = d(v[2 * i])? << 4 | d(v[2 * i + 1])?;
    }
    Some(out)
}

fn cmos(reg: u8) -> u8 { arch::outb(0x70, reg); arch::inb(0x71) }

/// A boot id that differs on every boot: TSC (its value at this point varies with host timing)
/// and the RTC, hashed.
fn boot_id() -> [u8; 16] {
    let mut h = orbital::blake3::Hasher::new();
    h.update(b"orbital-guest boot");
    h.update(&arch::rdtsc().to_le_bytes());
    for r in [0u8, 2, 4, 7, 8, 9] { h.update(&[cmos(r)]); }
    h.update(&arch::rdtsc().to_le_bytes());
    let f = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&f[..16]);
    id
}

enum Link { Serial, Virtio(virtio::Console) }

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
    let frames = unsafe { &mut *(&raw mut mem::FRAMES) };
    if let Err(e) = unsafe { frames.init(mbi as u64) } { panic!("memory: {}", e) }
    // The heap takes most of the largest run; 4 MiB of frames stay for whatever needs pages.
    let run = frames.largest_run();
    let heap_frames = run.saturating_sub(1024).max(run / 2);
    let heap = frames.alloc_contiguous(heap_frames).expect("heap frames");
    mem::init_heap(heap, heap_frames * mem::FRAME);
    unsafe { HEAP_READY = true }
    stage!("memory: {} MiB usable, heap {} MiB at {:#x}", frames.usable_bytes >> 20, (heap_frames * mem::FRAME) >> 20, heap);

    let link = if has_word(cmd, b"link=serial") { Link::Serial } else {
        match virtio::Console::init() {
            Ok(c) => { stage!("virtio-console: legacy PCI, queues up (features {:#x}), link on port {} ({})", c.features, c.port, if c.console_port || c.port == 0 { "virtconsole: the host must not fall behind" } else { "virtserialport: throttled, lossless" }); Link::Virtio(c) }
            Err(e) => { stage!("virtio-console: {}; the link is COM1", e); Link::Serial }
        }
    };
    if let Some(mode) = opt(cmd, b"raw") { raw_loop(link, mode) }
    if has_word(cmd, b"perf") { perf() }

    let k = opt_num(cmd, b"k").unwrap_or(256).clamp(2, 1 << 20);
    let device = opt_hex16(cmd, b"device").unwrap_or_else(|| {
        let mut d = [0u8; 16];
        d.copy_from_slice(&orbital::blake3::hash(b"orbital-guest default device")[..16]);
        d
    });
    let boot = boot_id();
    let (heap_free, _) = { let (u, f) = mem::heap_stats(); (f, u) };
    let log_cap = (heap_free as usize / 2).min(512 << 20);
    let mut srv = Server::new(device, boot, OS_NAME, k, MAX_FRAME, log_cap);
    if let Some(n) = opt_num(cmd, b"fill") { fill(&mut srv, n) }
    stage!("axiom: sequencer booted, k={}, head {}, link on {}", k, srv.head(), match link { Link::Serial => "COM1", Link::Virtio(_) => "virtio-console" });
    stage!("ready: head {}", srv.head());
    unsafe {
        LINK_ON_SERIAL = matches!(link, Link::Serial);
        if !LINK_ON_SERIAL { let t = core::mem::take(&mut *(&raw mut BOOT_TEXT)); srv.console(&t) }
        BOOT_TEXT = Vec::new();
        CONSOLE_VIA_LINK = true;
    }
    srv.announce();
    match link {
        Link::Serial => serial_loop(srv),
        Link::Virtio(c) => virtio_loop(srv, c),
    }
}

/// Bench hook (`fill=BYTES`): the device commits kv.set actions of its own (actor 0) until its
/// log holds that many bytes, so a stream can be measured without first pushing it in.
fn fill(srv: &mut Server, bytes: u64) {
    let value = alloc::string::String::from_utf8(alloc::vec![b'f'; 4000]).unwrap();
    let mut total = 0u64;
    let mut id = 1i64;
    while total < bytes {
        let p = orbital::sequencer::Proposal { actor: 0, id, domain: 1, action: alloc::string::String::from("kv.set"), args: orbital::value::obj(&[("key", orbital::value::s("fill")), ("value", orbital::value::s(&value))]), time: 0 };
        let before = srv.head();
        srv.propose(&p);
        for s in before..srv.head() { total += srv.entry(s).map_or(0, |e| e.len() as u64) }
        id += 1;
    }
    stage!("fill: {} entries, {} bytes", srv.head(), total);
}

/// `perf`: rates of the link's per-byte work under this CPU (TCG or hardware), on the console.
fn perf() {
    let data = alloc::vec![0x5Au8; 4 << 20];
    let rate = |t0: u64, n: usize| (n as u64 * time::tsc_per_us()) / (arch::rdtsc() - t0).max(1);
    let t0 = arch::rdtsc(); let c = orbital::frame::crc32(&data); stage!("perf: crc32 {} MB/s ({:x})", rate(t0, data.len()), c);
    let t0 = arch::rdtsc(); let h = orbital::blake3::hash(&data); stage!("perf: blake3 {} MB/s ({:x})", rate(t0, data.len()), h[0]);
    let mut out = Vec::with_capacity(data.len() * 2);
    let t0 = arch::rdtsc(); orbital::frame::put_stuffed(&mut out, &data); stage!("perf: stuff {} MB/s", rate(t0, data.len()));
    let mut v2 = alloc::vec![0u8; data.len()];
    let t0 = arch::rdtsc(); v2.copy_from_slice(&data); stage!("perf: memcpy {} MB/s", rate(t0, data.len()));
    // The whole ENTRIES path without a device: 8 MiB of entries framed with unlimited credit.
    let mut srv = Server::new([0; 16], [0; 16], OS_NAME, 256, MAX_FRAME, 64 << 20);
    fill(&mut srv, 8 << 20);
    let mut req = Vec::new();
    let hello = orbital::value::obj(&[("caps", orbital::value::Value::List(Vec::new())), ("client", orbital::value::s("perf")), ("console_window", orbital::value::Value::Int(0)), ("max", orbital::value::Value::Int(1)), ("max_frame", orbital::value::Value::Int(2097152)), ("min", orbital::value::Value::Int(1)), ("rid", orbital::value::Value::Int(1))]);
    orbital::frame::put_frame(&mut req, 1, &orbital::value::encode(&hello));
    let sub = orbital::value::obj(&[("from", orbital::value::Value::Int(0)), ("prev", orbital::value::Value::Bytes(alloc::vec![0; 32])), ("rid", orbital::value::Value::Int(2)), ("window", orbital::value::Value::Int(1 << 40))]);
    orbital::frame::put_frame(&mut req, 0x20, &orbital::value::encode(&sub));
    srv.feed(&req);
    let t0 = arch::rdtsc();
    let mut total = 0usize;
    loop { srv.pump(1 << 20); if srv.pending() == 0 { break } while let Some(c) = srv.take_chunk() { total += c.len() } }
    stage!("perf: entries framed {} MB/s ({} bytes)", rate(t0, total), total);
}

fn drain_console(srv: &mut Server) {
    unsafe {
        let buf = &mut *(&raw mut CONSOLE_BUF);
        if !buf.is_empty() { srv.console(buf); buf.clear(); }
    }
}

fn serial_loop(mut srv: Server) -> ! {
    let mut rx = [0u8; 256];
    loop {
        let mut n = 0;
        while n < rx.len() { match serial::read_byte() { Some(b) => { rx[n] = b; n += 1 } None => break } }
        if n > 0 { srv.feed(&rx[..n]) }
        drain_console(&mut srv);
        if srv.pending() < 4096 { srv.pump(16 * 1024) }
        // The FIFO takes 16 bytes whenever it reports empty; reading comes first again after that.
        let out = srv.output();
        let mut k = 0;
        if !out.is_empty() && serial::can_write() {
            while k < out.len() && k < 16 { arch::outb(0x3F8, out[k]); k += 1 }
        }
        if k > 0 { srv.consume(k) }
        if n == 0 && k == 0 { core::hint::spin_loop() }
    }
}

fn virtio_loop(mut srv: Server, mut c: virtio::Console) -> ! {
    srv.mirror = Some(Vec::new());
    loop {
        c.poll_rx(|b| srv.feed(b));
        drain_console(&mut srv);
        if srv.pending() < virtio::TX_BUF { srv.pump(2 * virtio::TX_BUF) }
        while srv.pending() > 0 && c.tx_ready() {
            match srv.take_chunk() { Some(chunk) => { let _ = c.send_owned(chunk); } None => break }
        }
        // Anything typed on COM1 (a person at the serial console) is console input too, and the
        // shell's answers are shown there as well as on the link.
        if let Some(b) = serial::read_byte() { srv.typed_on_mirror = true; srv.feed(&[b]); srv.typed_on_mirror = false; }
        if let Some(m) = srv.mirror.as_mut() { if !m.is_empty() { serial::write(m); m.clear(); } }
    }
}

/// Bench hook (`raw=echo` / `raw=emit`): plain bytes on the link channel, no protocol, as the
/// baseline the link's throughput is compared with. emit: the host sends a decimal count and
/// `\n`; the kernel answers with that many bytes (i % 251, never 0xFF) and waits for the next.
fn raw_loop(link: Link, mode: &[u8]) -> ! {
    let echo = mode == b"echo";
    stage!("raw mode: {}", if echo { "echo" } else { "emit" });
    let mut c = match link { Link::Virtio(c) => Some(c), Link::Serial => None };
    // A marker the host waits for before it starts timing.
    let ready = b"RAW READY\n";
    match c.as_mut() { Some(c) => { let mut s = 0; while s < ready.len() { s += c.send(&ready[s..]) } } None => serial::write(ready) }
    let mut pending: Vec<u8> = Vec::new();
    let mut count: u64 = 0;
    let mut pat = alloc::vec![0u8; virtio::TX_BUF];
    for (i, b) in pat.iter_mut().enumerate() { *b = (i % 251) as u8 }
    let mut emitted = 0u64;
    let mut to_emit = 0u64;
    loop {
        // receive
        match c.as_mut() {
            Some(v) => { v.poll_rx(|b| pending.extend_from_slice(b)); }
            None => { while let Some(b) = serial::read_byte() { pending.push(b); if pending.len() > 256 { break } } }
        }
        if echo {
            match c.as_mut() {
                Some(v) => { while !pending.is_empty() { let n = v.send(&pending); if n == 0 { break } pending.drain(..n); } }
                None => { for &b in pending.iter() { serial::write_byte(b) } pending.clear() }
            }
            continue;
        }
        for &b in pending.iter() {
            if b.is_ascii_digit() { count = count * 10 + (b - b'0') as u64 } else if b == b'\n' { to_emit += count; count = 0 }
        }
        pending.clear();
        while emitted < to_emit {
            let want = ((to_emit - emitted) as usize).min(pat.len());
            let start = (emitted % 251) as usize;
            let chunk = &pat[start..start + want.min(pat.len() - start)];
            let n = match c.as_mut() { Some(v) => v.send(chunk), None => { if serial::can_write() { for &b in chunk.iter().take(16) { arch::outb(0x3F8, b) } chunk.len().min(16) } else { 0 } } };
            if n == 0 { if c.is_some() { break } else { continue } }
            emitted += n as u64;
        }
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
