//! virtio-console over legacy virtio-pci (I/O BAR0), polled: receive queue 0, transmit queue 1,
//! port 0 only (no MULTIPORT). QEMU's virtconsole drops guest → host bytes the host socket cannot
//! take, so the link above never sends beyond the host's credit (docs/kernel-link.md section 6).
use crate::arch::{inb, inw, outb, outl, outw, inl};
use alloc::alloc::{alloc_zeroed, Layout};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};

const REG_DEVICE_FEATURES: u16 = 0x00;
const REG_GUEST_FEATURES: u16 = 0x04;
const REG_QUEUE_PFN: u16 = 0x08;
const REG_QUEUE_SIZE: u16 = 0x0C;
const REG_QUEUE_SELECT: u16 = 0x0E;
const REG_QUEUE_NOTIFY: u16 = 0x10;
const REG_STATUS: u16 = 0x12;
const S_ACK: u8 = 1;
const S_DRIVER: u8 = 2;
const S_DRIVER_OK: u8 = 4;
const S_FAILED: u8 = 128;
const DESC_WRITE: u16 = 2;

const RX_BUFS: usize = 16;
const RX_BUF: usize = 4096;
const TX_BUFS: usize = 8;
pub const TX_BUF: usize = 64 * 1024;

struct Queue { size: u16, desc: *mut u8, avail: *mut u8, used: *mut u8, last_used: u16, avail_idx: u16 }

impl Queue {
    unsafe fn setup(io: u16, index: u16) -> Result<Queue, &'static str> {
        outw(io + REG_QUEUE_SELECT, index);
        let size = inw(io + REG_QUEUE_SIZE);
        if size == 0 { return Err("virtio queue missing") }
        let q = size as usize;
        let align = |x: usize| (x + 4095) & !4095;
        let bytes = align(16 * q + 6 + 2 * q) + align(6 + 8 * q);
        let mem = alloc_zeroed(Layout::from_size_align(bytes, 4096).unwrap());
        if mem.is_null() { return Err("no memory for a virtio queue") }
        outl(io + REG_QUEUE_PFN, (mem as u64 >> 12) as u32);
        Ok(Queue { size, desc: mem, avail: mem.add(16 * q), used: mem.add(align(16 * q + 6 + 2 * q)), last_used: 0, avail_idx: 0 })
    }
    unsafe fn set_desc(&self, i: u16, addr: u64, len: u32, flags: u16) {
        let d = self.desc.add(16 * i as usize);
        write_volatile(d as *mut u64, addr);
        write_volatile(d.add(8) as *mut u32, len);
        write_volatile(d.add(12) as *mut u16, flags);
        write_volatile(d.add(14) as *mut u16, 0);
    }
    unsafe fn push_avail(&mut self, id: u16) {
        write_volatile(self.avail.add(4 + 2 * (self.avail_idx % self.size) as usize) as *mut u16, id);
        fence(Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        write_volatile(self.avail.add(2) as *mut u16, self.avail_idx);
        fence(Ordering::SeqCst);
    }
    /// The next used element (descriptor id, bytes written), if the device returned one.
    unsafe fn pop_used(&mut self) -> Option<(u16, u32)> {
        fence(Ordering::SeqCst);
        let idx = read_volatile(self.used.add(2) as *const u16);
        if idx == self.last_used { return None }
        let e = self.used.add(4 + 8 * (self.last_used % self.size) as usize);
        let id = read_volatile(e as *const u32) as u16;
        let len = read_volatile(e.add(4) as *const u32);
        self.last_used = self.last_used.wrapping_add(1);
        Some((id, len))
    }
}

pub struct Console { io: u16, rx: Queue, tx: Queue, rx_bufs: *mut u8, tx_bufs: *mut u8, tx_next: u16, tx_in_flight: u16, rx_reposted: bool, pub features: u32 }

impl Console {
    /// Finds and starts the first legacy virtio-console (1AF4:1003).
    pub fn init() -> Result<Console, &'static str> {
        let dev = crate::pci::find(0x1AF4, 0x1003).ok_or("no virtio-console (1af4:1003) on PCI")?;
        let bar = dev.bar(0);
        if bar & 1 == 0 { return Err("virtio-console BAR0 is not I/O space (use disable-modern=on)") }
        dev.enable_io_and_dma();
        let io = (bar & 0xFFFC) as u16;
        unsafe {
            outb(io + REG_STATUS, 0);
            outb(io + REG_STATUS, S_ACK);
            outb(io + REG_STATUS, S_ACK | S_DRIVER);
            let features = inl(io + REG_DEVICE_FEATURES);
            outl(io + REG_GUEST_FEATURES, 0); // one port, no size/multiport/emergency write
            let rx = match Queue::setup(io, 0) { Ok(q) => q, Err(e) => { outb(io + REG_STATUS, S_FAILED); return Err(e) } };
            let tx = match Queue::setup(io, 1) { Ok(q) => q, Err(e) => { outb(io + REG_STATUS, S_FAILED); return Err(e) } };
            let rx_bufs = alloc_zeroed(Layout::from_size_align(RX_BUFS * RX_BUF, 4096).unwrap());
            let tx_bufs = alloc_zeroed(Layout::from_size_align(TX_BUFS * TX_BUF, 4096).unwrap());
            if rx_bufs.is_null() || tx_bufs.is_null() { return Err("no memory for virtio buffers") }
            let mut c = Console { io, rx, tx, rx_bufs, tx_bufs, tx_next: 0, tx_in_flight: 0, rx_reposted: false, features };
            let n = (RX_BUFS as u16).min(c.rx.size);
            for i in 0..n {
                c.rx.set_desc(i, rx_bufs.add(i as usize * RX_BUF) as u64, RX_BUF as u32, DESC_WRITE);
                c.rx.push_avail(i);
            }
            outb(io + REG_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
            outw(io + REG_QUEUE_NOTIFY, 0);
            let _ = inb(io + REG_STATUS);
            Ok(c)
        }
    }

    /// Calls `f` with each chunk the host sent; returns whether anything came.
    pub fn poll_rx(&mut self, mut f: impl FnMut(&[u8])) -> bool {
        let mut any = false;
        unsafe {
            while let Some((id, len)) = self.rx.pop_used() {
                any = true;
                if (id as usize) < RX_BUFS {
                    let len = (len as usize).min(RX_BUF);
                    f(core::slice::from_raw_parts(self.rx_bufs.add(id as usize * RX_BUF), len));
                    self.rx.push_avail(id);
                    self.rx_reposted = true;
                }
            }
            if self.rx_reposted { self.rx_reposted = false; outw(self.io + REG_QUEUE_NOTIFY, 0) }
        }
        any
    }

    /// Reclaims finished transmit buffers; true when one is free.
    pub fn tx_ready(&mut self) -> bool {
        unsafe { while self.tx.pop_used().is_some() { self.tx_in_flight -= 1 } }
        (self.tx_in_flight as usize) < TX_BUFS.min(self.tx.size as usize)
    }
    pub fn tx_idle(&mut self) -> bool { self.tx_ready(); self.tx_in_flight == 0 }

    /// Queues up to TX_BUF bytes of `data`; returns how many were taken (0 when no buffer is free).
    pub fn send(&mut self, data: &[u8]) -> usize {
        if data.is_empty() || !self.tx_ready() { return 0 }
        let n = data.len().min(TX_BUF);
        unsafe {
            let slot = self.tx_next;
            let buf = self.tx_bufs.add(slot as usize * TX_BUF);
            core::ptr::copy_nonoverlapping(data.as_ptr(), buf, n);
            self.tx.set_desc(slot, buf as u64, n as u32, 0);
            self.tx.push_avail(slot);
            self.tx_next = (slot + 1) % TX_BUFS as u16;
            self.tx_in_flight += 1;
            outw(self.io + REG_QUEUE_NOTIFY, 1);
        }
        n
    }
}
