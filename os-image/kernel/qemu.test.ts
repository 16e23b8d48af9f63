// The guest kernel in QEMU: boot to a kernel-link handshake over COM1, over virtio-console and
// from the ISO; the page-fault hook; bad input on the link. Each test boots one short-lived QEMU.
import { existsSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeWithTools } from '../../scripts/testkit.ts';
import { encodeFrame } from '../../kernel-link/core/frame.ts';
import { bootGuest, buildKernel, EXIT_CRASH_STATUS, KERNEL_ISO, LinkClient, type Guest } from './harness.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const OVMF = '/usr/share/ovmf/OVMF.fd';

describeWithTools(['qemu-system-x86_64', 'cargo', 'grub-mkrescue'], 'guest kernel in QEMU', () => {
  let guest: Guest | undefined;
  beforeAll(() => buildKernel({ iso: true }), 120_000);
  afterEach(async () => { await guest?.close(); guest = undefined; });

  it('boots with -kernel and handshakes over COM1', async () => {
    guest = await bootGuest({ append: 'link=serial' });
    const link = new LinkClient(guest.serial);
    const w = await link.handshake();
    expect(w.version).toBe(1);
    expect(w.os).toBe('orbital-guest 0.1');
    expect(w.head).toBe(1); // the BOOT entry
    expect(w.caps).toEqual(expect.arrayContaining(['entries', 'propose', 'console-frames']));
    expect(link.text).toMatch(/cpu: GDT, TSS, IDT with IST stacks/);
    expect(link.text).toMatch(/ready: head 1/);
    const pong = await link.request({ t: 'ping', rid: link.nextRid() });
    expect(pong).toMatchObject({ t: 'pong', head: 1 });
  });

  it('handshakes over a virtconsole (port 0, the launcher default) too', async () => {
    guest = await bootGuest({ virtio: true, virtioPort: 'console' });
    const link = new LinkClient(guest.virtio!);
    const w = await link.handshake();
    expect(w.head).toBe(1);
    expect(link.text).toMatch(/link on port 0/);
  });

  it('handshakes over virtio-console (virtserialport, port 1), with the boot stages in the stream and on COM1', async () => {
    guest = await bootGuest({ virtio: true });
    const link = new LinkClient(guest.virtio!);
    const com1 = new LinkClient(guest.serial);
    const w = await link.handshake();
    expect(w.head).toBe(1);
    expect(link.text).toMatch(/virtio-console: legacy PCI, queues up .*link on port 1/);
    expect(com1.text).toMatch(/link on virtio-console/);
    // A proposal round trip and its console echo as a CONSOLE frame.
    const r = await link.request({ t: 'propose', rid: link.nextRid(), proposal: { actor: 1, id: 1, domain: 1, action: 'sh', args: { line: 'set color blue' }, time: 0 } });
    expect(r).toMatchObject({ t: 'result', status: 'committed', seq: 1, receipt: 2 });
    const c = await link.take((m) => m.t === 'console', 10000, 'console frame');
    expect(new TextDecoder().decode((c as { text: Uint8Array }).text)).toBe('$ set color blue\ncolor=blue\n');
  });

  it('boots from the hybrid ISO (GRUB, BIOS) to a handshake', async () => {
    guest = await bootGuest({ iso: KERNEL_ISO });
    const link = new LinkClient(guest.serial);
    const w = await link.handshake(65536, 40000);
    expect(w.head).toBe(1);
    expect(link.text).toMatch(/orbital kernel: long mode/);
  });

  it.skipIf(!existsSync(OVMF))('boots from the same ISO under UEFI (OVMF, GRUB EFI) to a handshake', async () => {
    guest = await bootGuest({ iso: KERNEL_ISO, extraArgs: ['-bios', OVMF] });
    const link = new LinkClient(guest.serial);
    const w = await link.handshake(65536, 60000);
    expect(w.head).toBe(1);
    expect(link.text).toMatch(/ready: head 1/);
  }, 90_000);

  it('a deliberate page fault prints the crash report and exits with the failure code', async () => {
    guest = await bootGuest({ append: 'link=serial fault=page' });
    const link = new LinkClient(guest.serial);
    const e = await guest.exited;
    await link.until(() => link.closed || link.text.includes('CRASH cs='), 5000, 'crash report');
    expect(e.code).toBe(EXIT_CRASH_STATUS);
    expect(link.text).toMatch(/CRASH vector=14 \(#PF page fault\) error=0x0 rip=0x[0-9a-f]{16} cr2=0x0000000100000000/);
    expect(link.text).toMatch(/CRASH rax=0x[0-9a-f]{16} rbx=/);
    expect(link.text).toMatch(/CRASH r12=/);
  });

  it('bad input (garbage, bad payloads, oversized frames, a flood beyond credit) never hangs it; the console still answers', async () => {
    guest = await bootGuest({ virtio: true });
    const link = new LinkClient(guest.virtio!);
    await link.handshake();
    // Garbage with newlines (typed console lines), raw FFs and half markers.
    let x = 12345;
    const junk = new Uint8Array(20000).map(() => { x = (x * 1103515245 + 12345) >>> 0; const r = x >>> 16; return r % 97 === 0 ? 0x0a : r % 89 === 0 ? 0xff : r % 83 === 0 ? 0x4c : r & 0xff; });
    link.writeRaw(junk);
    // A frame whose payload is not a value, an unknown type, a device-only type, a mistyped field.
    link.writeRaw(encodeFrame(0x10, new Uint8Array([1, 2, 3])));
    link.writeRaw(encodeFrame(0x77, new Uint8Array([0x08, 0, 0, 0, 0])));
    link.writeRaw(encodeFrame(0x11, new Uint8Array([0x08, 0, 0, 0, 0])));
    // Oversized for the device (max_frame is about 1 MiB): 1.5 MiB, skipped without storing.
    link.writeRaw(encodeFrame(0x10, new Uint8Array(1_600_000)));
    // A flood of proposals far beyond max_requests, and a subscription with a tiny window that we never extend.
    for (let i = 0; i < 300; i++) link.send({ t: 'propose', rid: 1000 + i, proposal: { actor: 1, id: 10 + i, domain: 1, action: 'echo', args: { text: 'flood '.repeat(50) }, time: 0 } });
    link.send({ t: 'subscribe', rid: 5000, from: 0, prev: new Uint8Array(32), window: 4096 });
    await link.until(() => link.messages.filter((m) => m.t === 'result').length >= 300, 60000, '300 results');
    const errors = link.messages.filter((m): m is Extract<typeof m, { t: 'error' }> => m.t === 'error').map((m) => m.code);
    expect(errors).toEqual(expect.arrayContaining(['bad-message', 'unknown-type', 'too-large']));
    // Still alive: PING answers, and a line typed at the console runs.
    const pong = await link.request({ t: 'ping', rid: 9999 });
    expect(pong.t).toBe('pong');
    expect((pong as { head: number }).head).toBeGreaterThan(600);
    link.writeRaw(utf8('\necho still answering\n'));
    await link.until(() => link.messages.some((m) => m.t === 'console' && new TextDecoder().decode(m.text).includes('$ echo still answering\nstill answering')), 20000, 'console echo');
  });
});
