//! PCI configuration space through the legacy 0xCF8/0xCFC ports (enough to find virtio devices).
use crate::arch::{inl, outl};

pub fn read32(bus: u8, dev: u8, func: u8, off: u8) -> u32 {
    outl(0xCF8, 0x8000_0000 | (bus as u32) << 16 | (dev as u32) << 11 | (func as u32) << 8 | (off as u32 & 0xFC));
    inl(0xCFC)
}
pub fn write32(bus: u8, dev: u8, func: u8, off: u8, v: u32) {
    outl(0xCF8, 0x8000_0000 | (bus as u32) << 16 | (dev as u32) << 11 | (func as u32) << 8 | (off as u32 & 0xFC));
    outl(0xCFC, v);
}

#[derive(Clone, Copy)]
pub struct Device { pub bus: u8, pub dev: u8, pub func: u8, pub vendor: u16, pub device: u16 }

/// The first function with this vendor and device id (buses 0..8 are plenty under QEMU).
pub fn find(vendor: u16, device: u16) -> Option<Device> {
    for bus in 0..8u8 {
        for dev in 0..32u8 {
            for func in 0..8u8 {
                let id = read32(bus, dev, func, 0);
                if id & 0xffff == 0xffff { if func == 0 { break } else { continue } }
                if id & 0xffff == vendor as u32 && id >> 16 == device as u32 { return Some(Device { bus, dev, func, vendor, device }) }
                if func == 0 && (read32(bus, dev, 0, 0x0C) >> 16) & 0x80 == 0 { break } // not multi-function
            }
        }
    }
    None
}

impl Device {
    pub fn bar(&self, i: u8) -> u32 { read32(self.bus, self.dev, self.func, 0x10 + 4 * i) }
    /// Enables I/O space decoding and bus mastering (DMA).
    pub fn enable_io_and_dma(&self) {
        let c = read32(self.bus, self.dev, self.func, 0x04);
        write32(self.bus, self.dev, self.func, 0x04, (c & 0xffff) | 0x1 | 0x4);
    }
}
