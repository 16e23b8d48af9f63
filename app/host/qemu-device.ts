// The QEMU guest on request: boots os-image/kernel's ELF under qemu-system-x86_64 (kernel-link's
// launcher: listen-first chardevs, no orphans) and speaks kernel-link to it on COM1.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { QemuMachine } from '../../kernel-link/node/qemu.ts';
import { which } from './which.ts';
import { KernelLinkDevice } from './link-device.ts';
import type { DeviceLink, DeviceSink } from './device.ts';
import type { Proposal } from '../../axiom/index.ts';
import type { ProposeResult } from '../../renderer/bridge.ts';
import { HostError } from './dispatch.ts';

/** The guest kernel ELF (ORBITAL_GUEST_KERNEL overrides: a bundled Electron main is not in the repo). */
export const GUEST_KERNEL = process.env.ORBITAL_GUEST_KERNEL ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'os-image', 'kernel', 'target', 'kernel', 'orbital-kernel.elf');

/** Whether this host can boot the guest, and if not, what a person should do. */
export function qemuAvailability(kernel = GUEST_KERNEL): { ok: true } | { ok: false; why: string } {
  if (!which('qemu-system-x86_64')) return { ok: false, why: 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)' };
  if (!existsSync(kernel)) return { ok: false, why: 'the guest kernel is not built yet: npm run os:build' };
  return { ok: true };
}

export class QemuGuestDevice implements DeviceLink {
  readonly target = 'qemu' as const;
  readonly label = 'QEMU guest (orbital kernel)';
  private machine: QemuMachine | null = null;
  private link: KernelLinkDevice | null = null;
  constructor(private readonly kernel = GUEST_KERNEL) {}

  async start(sink: DeviceSink, from: number): Promise<void> {
    sink.link('connecting');
    const m = await QemuMachine.launch({ kernel: this.kernel, paused: true, virtio: false });
    this.machine = m;
    void m.exited.then((e) => sink.link('down', `QEMU exited: ${e.summary}`));
    const serial = m.serial;
    if (!serial) { await m.kill(); throw new HostError('bug', 'QEMU started without its serial console'); }
    this.link = new KernelLinkDevice('qemu', this.label, async () => serial);
    await m.cont();
    try { await this.link.start(sink, from); } catch (e) { await m.kill(); throw e; }
  }

  propose(p: Proposal): Promise<ProposeResult> {
    if (!this.link) throw new HostError('disconnected', 'the QEMU guest is not running');
    return this.link.propose(p);
  }

  async close(): Promise<void> {
    await this.link?.close();
    await this.machine?.powerOff().catch(() => this.machine?.killNow());
    this.link = null; this.machine = null;
  }
}
