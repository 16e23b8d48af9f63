// The QEMU guest as a device of the host services: booted on request, reached over kernel-link
// on COM1, it commits a command and streams its log like the hosted OS does.
import { expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { decodeEntry, initAxiom, Kind } from '../../axiom/index.ts';
import { describeWithTools } from '../../scripts/testkit.ts';
import { buildKernel } from '../../os-image/kernel/harness.ts';
import { HostServices } from './services.ts';
import { GUEST_KERNEL, QemuGuestDevice } from './qemu-device.ts';

describeWithTools(['qemu-system-x86_64', 'cargo'], 'QEMU guest device', () => {
  it('boots, commits an sh command and streams the guest log', async () => {
    await initAxiom();
    if (!existsSync(GUEST_KERNEL)) buildKernel();
    const s = new HostServices({ links: { qemu: () => new QemuGuestDevice() }, capabilities: () => ({ qemu: true, serialPorts: [] }), mode: 'web', log: () => {} });
    try {
      const info = await s.connect('qemu');
      expect(info.link).toBe('up');
      const r = await s.propose(info.id, 1, 'sh', { line: 'set q 1' });
      expect(r.status).toBe('committed');
      let log = s.logOf(info.id);
      for (let i = 0; i < 100 && log.length <= r.seq; i++) { await new Promise((res) => setTimeout(res, 50)); log = s.logOf(info.id); }
      const first = decodeEntry(log[0]!);
      expect(first.ok && first.value.kind).toBe(Kind.Boot);
      const c = decodeEntry(log[r.seq]!);
      expect(c.ok && c.value.kind).toBe(Kind.Commit);
    } finally { await s.close(); }
  }, 120_000);
});
