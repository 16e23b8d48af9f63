// The kernel-link conformance suite (kernel-link/node/conformance.ts) against the guest kernel in
// QEMU, on both channels, through kernel-link's QEMU launcher: the same tests the hosted OS and
// the memory device pass.
import { linkConformance, shareTransport } from '../../kernel-link/node/conformance.ts';
import { QemuMachine } from '../../kernel-link/node/qemu.ts';
import { describeWithTools } from '../../scripts/testkit.ts';
import { buildKernel, KERNEL_ELF } from './harness.ts';

describeWithTools(['qemu-system-x86_64', 'cargo'], 'guest kernel: kernel-link conformance', () => {
  buildKernel(); // at collection: quick when up to date, and the suite's beforeAll boots it
  for (const via of ['virtio', 'serial'] as const) {
    linkConformance({
      name: `guest kernel in QEMU over ${via === 'virtio' ? 'virtio-console' : 'COM1'}`,
      // TCG emulation, and COM1 moves about 0.3 MB/s.
      slowness: via === 'serial' ? 6 : 3,
      // The fault run streams hundreds of entries through 1% damage: ~4 s on virtio, minutes on
      // COM1 under TCG; the channel-independent repair logic is covered by the virtio run.
      faults: via === 'virtio',
      start: async () => {
        const m = await QemuMachine.launch({ kernel: KERNEL_ELF, paused: true, virtio: via === 'virtio', memoryMib: 256 });
        const connect = shareTransport(via === 'serial' ? m.serial! : m.virtio!);
        if (via === 'virtio') m.serial!.attach({ data: () => {}, close: () => {} }); // COM1 is a plain console then
        await m.cont();
        return { connect, stop: async () => { await m.kill(); } };
      },
    });
  }
});
