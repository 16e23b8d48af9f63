//! Timestamps from the TSC, calibrated once against PIT channel 2. The TSC counts from 0 at
//! reset under QEMU, so micros() is time since power-on there (on hardware: since CPU reset).
use crate::arch::{inb, outb, rdtsc};

static mut TSC_PER_US: u64 = 1000;

pub fn calibrate() {
    // PIT channel 2, mode 0, 5 ms (1193182 Hz * 0.005): gate on, speaker off; poll OUT2.
    const TICKS: u16 = 5966;
    let g = inb(0x61);
    outb(0x61, (g & 0xFC) | 0x01);
    outb(0x43, 0xB0);
    outb(0x42, (TICKS & 0xff) as u8);
    outb(0x42, (TICKS >> 8) as u8);
    let t0 = rdtsc();
    let mut spins = 0u64;
    while inb(0x61) & 0x20 == 0 {
        spins += 1;
        if spins > 50_000_000 { break } // no PIT: keep the default rather than hang
    }
    let t1 = rdtsc();
    outb(0x61, g);
    let per = (t1 - t0) / 5000;
    if per > 0 { unsafe { TSC_PER_US = per } }
}

pub fn tsc_per_us() -> u64 { unsafe { TSC_PER_US } }
pub fn micros() -> u64 { rdtsc() / tsc_per_us() }
