//! x86_64 basics: port I/O, GDT with a TSS (IST stacks), IDT for the 32 exceptions, the crash
//! report, and leaving QEMU through isa-debug-exit.
use core::arch::{asm, global_asm};

global_asm!(include_str!("boot.s"), options(att_syntax));
global_asm!(include_str!("isr_stubs.s"), options(att_syntax));

#[inline(always)]
pub fn outb(port: u16, v: u8) { unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) } }
#[inline(always)]
pub fn inb(port: u16) -> u8 { let v: u8; unsafe { asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags)) }; v }
#[inline(always)]
pub fn outw(port: u16, v: u16) { unsafe { asm!("out dx, ax", in("dx") port, in("ax") v, options(nomem, nostack, preserves_flags)) } }
#[inline(always)]
pub fn inw(port: u16) -> u16 { let v: u16; unsafe { asm!("in ax, dx", out("ax") v, in("dx") port, options(nomem, nostack, preserves_flags)) }; v }
#[inline(always)]
pub fn outl(port: u16, v: u32) { unsafe { asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack, preserves_flags)) } }
#[inline(always)]
pub fn inl(port: u16) -> u32 { let v: u32; unsafe { asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack, preserves_flags)) }; v }
#[inline(always)]
pub fn rdtsc() -> u64 { let lo: u32; let hi: u32; unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }; ((hi as u64) << 32) | lo as u64 }

/// isa-debug-exit (iobase 0xf4): QEMU exits with status (v << 1) | 1. A triple fault under
/// -no-reboot exits 0, so every deliberate exit is odd and 0 always means "crashed silently".
pub const EXIT_OK: u8 = 0x10; // status 33
pub const EXIT_CRASH: u8 = 0x2a; // status 85

pub fn exit_qemu(code: u8) -> ! {
    outl(0xf4, code as u32);
    // Not under QEMU (or no isa-debug-exit): stop here.
    loop { unsafe { asm!("cli; hlt", options(nomem, nostack)) } }
}

#[repr(C, packed)]
struct Tss { _r0: u32, rsp: [u64; 3], _r1: u64, ist: [u64; 7], _r2: u64, _r3: u16, iomap: u16 }

#[repr(C, align(16))]
struct Stack([u8; 32 * 1024]);
static mut IST1: Stack = Stack([0; 32 * 1024]);
static mut IST2: Stack = Stack([0; 32 * 1024]);
static mut TSS: Tss = Tss { _r0: 0, rsp: [0; 3], _r1: 0, ist: [0; 7], _r2: 0, _r3: 0, iomap: 104 };
static mut GDT: [u64; 5] = [0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF, 0, 0];
static mut IDT: [[u64; 2]; 256] = [[0; 2]; 256];

#[repr(C, packed)]
struct Pointer { limit: u16, base: u64 }

extern "C" { static isr_table: [u64; 32]; }

pub fn init_cpu_tables() {
    unsafe {
        let tss = &raw mut TSS;
        (*tss).ist[0] = (&raw const IST1 as u64) + 32 * 1024;
        (*tss).ist[1] = (&raw const IST2 as u64) + 32 * 1024;
        let base = tss as u64;
        let limit = (core::mem::size_of::<Tss>() - 1) as u64;
        let gdt = &raw mut GDT;
        (*gdt)[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89u64 << 40) | (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
        (*gdt)[4] = base >> 32;
        let gp = Pointer { limit: (5 * 8 - 1) as u16, base: gdt as u64 };
        asm!(
            "lgdt [{0}]",
            "push 0x08",
            "lea {1}, [rip + 2f]",
            "push {1}",
            "retfq",
            "2:",
            "mov {2:x}, 0x10",
            "mov ds, {2:x}", "mov es, {2:x}", "mov ss, {2:x}",
            "mov {2:x}, 0x18",
            "ltr {2:x}",
            in(reg) &gp, out(reg) _, out(reg) _,
        );
        let idt = &raw mut IDT;
        for v in 0..32 {
            let off = isr_table[v];
            // #DF (8) and #MC (18) get their own stack, so a fault while on IST1 still reports.
            let ist: u64 = if v == 8 || v == 18 { 2 } else { 1 };
            (*idt)[v][0] = (off & 0xffff) | (0x08 << 16) | (ist << 32) | (0x8Eu64 << 40) | (((off >> 16) & 0xffff) << 48);
            (*idt)[v][1] = off >> 32;
        }
        let ip = Pointer { limit: (256 * 16 - 1) as u16, base: idt as u64 };
        asm!("lidt [{0}]", in(reg) &ip);
    }
}

#[repr(C)]
pub struct Frame {
    r15: u64, r14: u64, r13: u64, r12: u64, r11: u64, r10: u64, r9: u64, r8: u64,
    rbp: u64, rdi: u64, rsi: u64, rdx: u64, rcx: u64, rbx: u64, rax: u64,
    vector: u64, error: u64, rip: u64, cs: u64, rflags: u64, rsp: u64, ss: u64,
}

const NAMES: [&str; 32] = ["#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range", "#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor segment overrun", "#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection", "#PF page fault", "reserved", "#MF x87 error", "#AC alignment check", "#MC machine check", "#XM SIMD error", "#VE virtualization", "#CP control protection", "reserved", "reserved", "reserved", "reserved", "reserved", "reserved", "#HV hypervisor injection", "#VC VMM communication", "#SX security", "reserved"];

#[no_mangle]
extern "C" fn exception_handler(f: &Frame) -> ! {
    let cr2: u64;
    unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack)) };
    let v = f.vector as usize & 31;
    // FF then newline: a host decoder inside a half-sent frame abandons it (bad-escape) and reads
    // the report as text; in text state it sees one stray FF before an empty line.
    crate::serial::write(b"\xff\n");
    crate::rawprintln!("CRASH vector={} ({}) error={:#x} rip={:#018x} cr2={:#018x}", f.vector, NAMES[v], f.error, f.rip, cr2);
    crate::rawprintln!("CRASH rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}", f.rax, f.rbx, f.rcx, f.rdx);
    crate::rawprintln!("CRASH rsi={:#018x} rdi={:#018x} rbp={:#018x} rsp={:#018x}", f.rsi, f.rdi, f.rbp, f.rsp);
    crate::rawprintln!("CRASH r8={:#018x} r9={:#018x} r10={:#018x} r11={:#018x}", f.r8, f.r9, f.r10, f.r11);
    crate::rawprintln!("CRASH r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}", f.r12, f.r13, f.r14, f.r15);
    crate::rawprintln!("CRASH cs={:#x} ss={:#x} rflags={:#x} t={}us", f.cs, f.ss, f.rflags, crate::time::micros());
    exit_qemu(EXIT_CRASH)
}
