# Multiboot v1 entry: the loader (QEMU -kernel, GRUB) enters start32 in 32-bit protected mode
# with paging off. We zero .bss, identity-map the first 4 GiB with 2 MiB pages (everything above
# is unmapped, so the fault hook can touch 4 GiB to get a page fault), enable PAE + SSE, switch
# EFER.LME and paging on, and jump to 64-bit code that calls kmain(magic, mbi).
.set MB_MAGIC, 0x1BADB002
# bit 0: page-align modules, bit 1: memory map, bit 16: the address fields below are valid
.set MB_FLAGS, 0x00010003

.section .multiboot, "a"
.balign 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header
    .long __load_start
    .long __load_end
    .long __bss_end
    .long start32

.section .text.boot, "ax"
.code32
.global start32
start32:
    cli
    cld
    mov %eax, %esi
    mov %ebx, %ebp
    mov $__load_end, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb
    mov %esi, boot_magic
    mov %ebp, boot_mbi
    mov $boot_stack_top, %esp

    mov $boot_pdpt, %eax
    or $3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $3, %eax
    mov %eax, boot_pdpt
    add $4096, %eax
    mov %eax, boot_pdpt + 8
    add $4096, %eax
    mov %eax, boot_pdpt + 16
    add $4096, %eax
    mov %eax, boot_pdpt + 24
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jne 1b

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x620, %eax          # PAE | OSFXSR | OSXMMEXCPT
    mov %eax, %cr4
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax          # EFER.LME
    wrmsr
    mov %cr0, %eax
    and $0xFFFFFFF3, %eax    # clear EM, TS
    or $0x80000003, %eax     # PG | MP | PE
    mov %eax, %cr0
    lgdt boot_gdtr
    ljmp $0x08, $start64

.code64
start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    fninit
    mov boot_magic(%rip), %edi
    mov boot_mbi(%rip), %esi
    call kmain
2:  hlt
    jmp 2b

.section .rodata
.balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdtr:
    .word boot_gdtr - boot_gdt - 1
    .long boot_gdt

.section .bss.boot, "aw", @nobits
.balign 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096 * 4
.balign 16
boot_stack: .skip 256 * 1024
boot_stack_top:
.balign 4
boot_magic: .skip 4
boot_mbi:   .skip 4
