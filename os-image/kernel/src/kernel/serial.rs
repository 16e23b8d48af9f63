//! 16550 UART on COM1 (0x3F8), polled: the console, and the link where there is no virtio.
use crate::arch::{inb, outb};

const COM1: u16 = 0x3F8;

pub fn init() {
    outb(COM1 + 1, 0x00); // no interrupts: everything is polled
    outb(COM1 + 3, 0x80); // DLAB
    outb(COM1, 0x01); // divisor 1 = 115200 baud (QEMU ignores the rate)
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8N1
    outb(COM1 + 2, 0xC7); // FIFO on, cleared, 14-byte threshold
    outb(COM1 + 4, 0x03); // DTR | RTS
}

#[inline]
pub fn can_write() -> bool { inb(COM1 + 5) & 0x20 != 0 }
#[inline]
pub fn write_byte(b: u8) {
    while !can_write() { core::hint::spin_loop() }
    outb(COM1, b);
}
pub fn write(bytes: &[u8]) { for &b in bytes { write_byte(b) } }
#[inline]
pub fn read_byte() -> Option<u8> { if inb(COM1 + 5) & 1 != 0 { Some(inb(COM1)) } else { None } }

pub struct Writer;
impl core::fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result { crate::console_write(s.as_bytes()); Ok(()) }
}
/// Straight to COM1, bypassing the link (crash reports).
pub struct Raw;
impl core::fmt::Write for Raw {
    fn write_str(&mut self, s: &str) -> core::fmt::Result { write(s.as_bytes()); Ok(()) }
}

#[macro_export]
macro_rules! kprint { ($($t:tt)*) => {{ let _ = core::fmt::Write::write_fmt(&mut $crate::serial::Writer, format_args!($($t)*)); }} }
#[macro_export]
macro_rules! kprintln { ($($t:tt)*) => {{ $crate::kprint!($($t)*); $crate::console_write(b"\n"); }} }
#[macro_export]
macro_rules! rawprintln { ($($t:tt)*) => {{ let _ = core::fmt::Write::write_fmt(&mut $crate::serial::Raw, format_args!($($t)*)); $crate::serial::write(b"\n"); }} }
