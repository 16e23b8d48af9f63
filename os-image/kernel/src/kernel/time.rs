//! Timestamps from the TSC, calibrated once against PIT channel 2. The TSC counts from 0 at
//! reset under QEMU, so micros() is time since power-on there (on hardware: since CPU reset).
use crate::arch::{inb, outb, rdtsc};

static mut TSC_PER_US: u64 = 1000;

/// TSC ticks per µs against PIT channel 2 (mode 0, one-shot). Under TCG a PIT interval can come
/// out long when the vCPU is descheduled, never short, so the smallest of three 3 ms runs wins.
pub fn calibrate() {
    let mut best = u64::MAX;
    for _ in 0..3 { if let Some(p) = pit_interval(3) { best = best.min(p) } }
    if best != u64::MAX && best > 0 { unsafe { TSC_PER_US = best } }
}

fn pit_interval(ms: u64) -> Option<u64> {
    let ticks = (1193182 * ms / 1000) as u16;
    let g = inb(0x61);
    outb(0x61, g & 0xFC); // gate low
    outb(0x43, 0xB0); // channel 2, lobyte/hibyte, mode 0
    outb(0x42, (ticks & 0xff) as u8);
    outb(0x42, (ticks >> 8) as u8);
    outb(0x61, (g & 0xFC) | 0x01); // gate high: counting starts
    let t0 = rdtsc();
    let mut spins = 0u64;
    while inb(0x61) & 0x20 == 0 {
        spins += 1;
        if spins > 50_000_000 { outb(0x61, g); return None } // no PIT: keep the default rather than hang
    }
    let t1 = rdtsc();
    outb(0x61, g);
    Some((t1 - t0) / (ms * 1000))
}

pub fn tsc_per_us() -> u64 { unsafe { TSC_PER_US } }
pub fn micros() -> u64 { rdtsc() / tsc_per_us() }
