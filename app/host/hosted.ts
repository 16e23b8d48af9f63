// The default device: the hosted Orbital OS, started in this process and served on a private
// unix socket, reached through kernel-link like any other device (so the shell exercises the
// same path it uses for QEMU and boards).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostedOs } from '../../os-image/hosted/hosted-os.ts';
import { serveHosted } from '../../os-image/hosted/link.ts';
import { KernelLinkDevice } from './link-device.ts';

export interface HostedDevice { os: HostedOs; socket: string; link(): KernelLinkDevice; close(): Promise<void> }

export async function startHostedDevice(dataDir: string, opts: { fsync?: 'always' | 'never' } = {}): Promise<HostedDevice> {
  const os = await HostedOs.start({ dataDir, ...(opts.fsync ? { fsync: opts.fsync } : {}) });
  const dir = mkdtempSync(join(tmpdir(), 'orbital-link-'));
  const socket = join(dir, 'hosted.sock');
  let server;
  try { server = await serveHosted(os, [{ path: socket }]); } catch (e) { os.close(); throw e; }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await server.close();
    os.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { os, socket, link: () => new KernelLinkDevice('hosted', 'hosted Orbital OS', { path: socket }), close };
}
