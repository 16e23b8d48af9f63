# Exception entry stubs (vectors 0..31), generated once; every stub runs on an IST stack
# (the precompiled libcore uses the red zone, so nothing may push below an interrupted rsp).
.macro isr_noerr n
isr\n:
    push $0
    push $\n
    jmp isr_common
.endm
.macro isr_err n
isr\n:
    push $\n
    jmp isr_common
.endm
.section .text
    isr_noerr 0
    isr_noerr 1
    isr_noerr 2
    isr_noerr 3
    isr_noerr 4
    isr_noerr 5
    isr_noerr 6
    isr_noerr 7
    isr_err 8
    isr_noerr 9
    isr_err 10
    isr_err 11
    isr_err 12
    isr_err 13
    isr_err 14
    isr_noerr 15
    isr_noerr 16
    isr_err 17
    isr_noerr 18
    isr_noerr 19
    isr_noerr 20
    isr_err 21
    isr_noerr 22
    isr_noerr 23
    isr_noerr 24
    isr_noerr 25
    isr_noerr 26
    isr_noerr 27
    isr_noerr 28
    isr_err 29
    isr_err 30
    isr_noerr 31
isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    and $-16, %rsp
    call exception_handler
1:  hlt
    jmp 1b
.section .rodata
.balign 8
.global isr_table
isr_table:
    .quad isr0
    .quad isr1
    .quad isr2
    .quad isr3
    .quad isr4
    .quad isr5
    .quad isr6
    .quad isr7
    .quad isr8
    .quad isr9
    .quad isr10
    .quad isr11
    .quad isr12
    .quad isr13
    .quad isr14
    .quad isr15
    .quad isr16
    .quad isr17
    .quad isr18
    .quad isr19
    .quad isr20
    .quad isr21
    .quad isr22
    .quad isr23
    .quad isr24
    .quad isr25
    .quad isr26
    .quad isr27
    .quad isr28
    .quad isr29
    .quad isr30
    .quad isr31
