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

const F_MULTIPORT: u32 = 1 << 1;
const REG_CONFIG: u16 = 0x14; // legacy, no MSI-X: cols u16, rows u16, max_nr_ports u32
const C_DEVICE_READY: u16 = 0;
const C_DEVICE_ADD: u16 = 1;
const C_PORT_READY: u16 = 3;
const C_CONSOLE_PORT: u16 = 4;
const C_PORT_OPEN: u16 = 6;
/// The port a host gives the link (`-device virtserialport,nr=1,name=org.orbital.link`). Unlike a
/// virtconsole, QEMU throttles a virtserialport when the host socket is full instead of dropping.
pub const LINK_PORT_NAME: &[u8] = b"org.orbital.link";

pub struct Console {
    io: u16, rx: Queue, tx: Queue, rx_bufs: *mut u8, tx_bufs: *mut u8, tx_next: u16, tx_in_flight: u16, rx_reposted: bool,
    pub features: u32,
    /// Multiport: the control queues (2 receive, 3 transmit) and their buffers.
    ctl: Option<(Queue, Queue, *mut u8)>,
    /// The port carrying the link (0 = the console port).
    pub port: u32,
    pub console_port: bool,
    pub ports_seen: u32,
    /// Chunks handed over by `send_owned`, held until the device has used them (DMA from them).
    tx_hold: [Option<alloc::vec::Vec<u8>>; TX_BUFS],
}

impl Console {
    /// Finds and starts the first legacy virtio-serial device (1AF4:1003). With MULTIPORT, the link
    /// runs on port 1 when the host added one (a throttled virtserialport), else on port 0.
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
            let multi = features & F_MULTIPORT != 0 && inl(io + REG_CONFIG + 4) >= 2;
            outl(io + REG_GUEST_FEATURES, if multi { F_MULTIPORT } else { 0 });
            let fail = |e| { outb(io + REG_STATUS, S_FAILED); Err(e) };
            let q = |i| Queue::setup(io, i);
            let (rx0, tx0) = match (q(0), q(1)) { (Ok(a), Ok(b)) => (a, b), _ => return fail("virtio queues 0/1 missing") };
            let mut ctl = None;
            let mut port1 = None;
            if multi {
                match (q(2), q(3), q(4), q(5)) {
                    (Ok(c_rx), Ok(c_tx), Ok(r1), Ok(t1)) => {
                        let bufs = alloc_zeroed(Layout::from_size_align(32 * 64, 4096).unwrap());
                        if bufs.is_null() { return fail("no memory for virtio control buffers") }
                        ctl = Some((c_rx, c_tx, bufs));
                        port1 = Some((r1, t1));
                    }
                    _ => return fail("virtio control queues missing"),
                }
            }
            let rx_bufs = alloc_zeroed(Layout::from_size_align(RX_BUFS * RX_BUF, 4096).unwrap());
            let tx_bufs = alloc_zeroed(Layout::from_size_align(TX_BUFS * TX_BUF, 4096).unwrap());
            if rx_bufs.is_null() || tx_bufs.is_null() { return fail("no memory for virtio buffers") }
            let mut c = Console { io, rx: rx0, tx: tx0, rx_bufs, tx_bufs, tx_next: 0, tx_in_flight: 0, rx_reposted: false, features, ctl, port: 0, console_port: false, ports_seen: 0, tx_hold: Default::default() };
            if let Some((c_rx, _, bufs)) = c.ctl.as_mut() {
                // 16 receive buffers of 64 bytes for control messages (and port names), 16 to send from.
                for i in 0..16u16 { c_rx.set_desc(i, bufs.add(64 * i as usize) as u64, 64, DESC_WRITE); c_rx.push_avail(i); }
            }
            outb(io + REG_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
            if c.ctl.is_some() {
                outw(io + REG_QUEUE_NOTIFY, 2);
                c.control(0, C_DEVICE_READY, 1);
                // QEMU answers with one DEVICE_ADD per port (synchronously under TCG; give a
                // real board's device a moment too).
                let (mut added, mut quiet) = (0u32, 0u32);
                let mut consoles = 0u32;
                while quiet < 2000 {
                    let mut got = false;
                    while let Some((id, ev, _)) = c.poll_control() {
                        got = true;
                        if ev == C_DEVICE_ADD { added |= 1 << id.min(31); c.control(id, C_PORT_READY, 1); }
                        if ev == C_CONSOLE_PORT { consoles |= 1 << id.min(31); }
                    }
                    quiet = if got { 0 } else { quiet + 1 };
                    core::hint::spin_loop();
                }
                c.ports_seen = added;
                if added & 2 != 0 {
                    let (r1, t1) = port1.take().unwrap();
                    c.rx = r1;
                    c.tx = t1;
                    c.port = 1;
                } else if added & 1 == 0 {
                    return fail("virtio-serial: the host added no port 0 or 1");
                }
                c.console_port = consoles & (1 << c.port) != 0;
                c.control(c.port, C_PORT_OPEN, 1);
            }
            let n = (RX_BUFS as u16).min(c.rx.size);
            for i in 0..n {
                c.rx.set_desc(i, rx_bufs.add(i as usize * RX_BUF) as u64, RX_BUF as u32, DESC_WRITE);
                c.rx.push_avail(i);
            }
            outw(io + REG_QUEUE_NOTIFY, c.rx_queue());
            let _ = inb(io + REG_STATUS);
            Ok(c)
        }
    }

    fn rx_queue(&self) -> u16 { if self.port == 0 { 0 } else { 2 + 2 * self.port as u16 } }
    fn tx_queue(&self) -> u16 { self.rx_queue() + 1 }

    /// Sends one control message (id, event, value) and waits until the device took it.
    unsafe fn control(&mut self, id: u32, event: u16, value: u16) {
        let io = self.io;
        let Some((_, c_tx, bufs)) = self.ctl.as_mut() else { return };
        let slot = (c_tx.avail_idx % 16) + 16;
        let b = bufs.add(64 * slot as usize);
        write_volatile(b as *mut u32, id);
        write_volatile(b.add(4) as *mut u16, event);
        write_volatile(b.add(6) as *mut u16, value);
        c_tx.set_desc(slot - 16, b as u64, 8, 0);
        c_tx.push_avail(slot - 16);
        outw(io + REG_QUEUE_NOTIFY, 3);
        let mut spins = 0;
        while c_tx.pop_used().is_none() && spins < 1_000_000 { spins += 1; core::hint::spin_loop() }
    }

    /// The next control message from the device: (port id, event, value).
    unsafe fn poll_control(&mut self) -> Option<(u32, u16, u16)> {
        let io = self.io;
        let (c_rx, _, bufs) = self.ctl.as_mut()?;
        let (i, _len) = c_rx.pop_used()?;
        let b = bufs.add(64 * (i as usize % 16));
        let m = (read_volatile(b as *const u32), read_volatile(b.add(4) as *const u16), read_volatile(b.add(6) as *const u16));
        c_rx.push_avail(i);
        outw(io + REG_QUEUE_NOTIFY, 2);
        Some(m)
    }

    /// Calls `f` with each chunk the host sent; returns whether anything came.
    pub fn poll_rx(&mut self, mut f: impl FnMut(&[u8])) -> bool {
        let mut any = false;
        unsafe {
            // Control traffic after start-up (host connects/disconnects) only needs consuming.
            while self.ctl.is_some() && self.poll_control().is_some() {}
            while let Some((id, len)) = self.rx.pop_used() {
                any = true;
                if (id as usize) < RX_BUFS {
                    let len = (len as usize).min(RX_BUF);
                    f(core::slice::from_raw_parts(self.rx_bufs.add(id as usize * RX_BUF), len));
                    self.rx.push_avail(id);
                    self.rx_reposted = true;
                }
            }
            if self.rx_reposted { self.rx_reposted = false; outw(self.io + REG_QUEUE_NOTIFY, self.rx_queue()) }
        }
        any
    }

    /// Reclaims finished transmit buffers; true when one is free.
    pub fn tx_ready(&mut self) -> bool {
        unsafe {
            while let Some((id, _)) = self.tx.pop_used() {
                self.tx_in_flight -= 1;
                if let Some(h) = self.tx_hold.get_mut(id as usize) { *h = None }
            }
        }
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
            outw(self.io + REG_QUEUE_NOTIFY, self.tx_queue());
        }
        n
    }

    /// Sends a whole chunk without copying it: the descriptor points at the chunk, which is kept
    /// until the device returns it. Gives the chunk back when no descriptor is free.
    pub fn send_owned(&mut self, data: alloc::vec::Vec<u8>) -> Result<(), alloc::vec::Vec<u8>> {
        if data.is_empty() { return Ok(()) }
        if !self.tx_ready() { return Err(data) }
        unsafe {
            let slot = self.tx_next;
            self.tx.set_desc(slot, data.as_ptr() as u64, data.len() as u32, 0);
            self.tx_hold[slot as usize] = Some(data);
            self.tx.push_avail(slot);
            self.tx_next = (slot + 1) % TX_BUFS as u16;
            self.tx_in_flight += 1;
            outw(self.io + REG_QUEUE_NOTIFY, self.tx_queue());
        }
        Ok(())
    }
}
