// The guest kernel's boot stages as lab-file YAML (a device's `boot:` block, indented for a
// device under `devices:`): what `orbital-lab init` writes for the QEMU device, and what the
// tests boot the guest with. The lines are the kernel's own stage lines (os-image/kernel).
export const GUEST_BOOT = `    boot:
      milestones:
        - { name: kernel, pattern: "orbital kernel: long mode" }
        - { name: cpu, pattern: "cpu: GDT" }
        - { name: memory, pattern: "memory: .* MiB usable" }
        - { name: axiom, pattern: "axiom: sequencer booted" }
      success: "ready: head"
      reset: "SeaBIOS \\\\(version"
`;
