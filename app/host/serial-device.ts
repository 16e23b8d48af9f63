// A board on a serial port, through kernel-link. The renderer may only name a port the host
// listed itself: a path from a renderer is never opened as given.
// serialport is loaded on first use: it has a native binding, and a host without it (or an
// Electron build without it rebuilt) must still start, with no serial ports to offer.
import { KernelLinkDevice } from './link-device.ts';
import { HostError } from './dispatch.ts';

/** The serial ports this host can see (empty when listing fails: no ports, no permission). */
export async function listSerialPorts(extra: string[] = []): Promise<string[]> {
  let ports: string[] = [];
  try { const { SerialPort } = await import('serialport'); ports = (await SerialPort.list()).map((p) => p.path); } catch { ports = []; }
  return [...new Set([...extra, ...ports])].sort();
}

export function serialDevice(path: string | undefined, listed: string[]): KernelLinkDevice {
  if (!path) throw new HostError('bad-input', 'name the serial port to open (the Devices window lists them)');
  if (!listed.includes(path)) throw new HostError('bad-input', `${path} is not one of the serial ports this host found (${listed.join(', ') || 'none'})`);
  return new KernelLinkDevice('serial', `serial ${path}`, async () => (await import('../../kernel-link/node/serial.ts')).openSerial(path));
}
