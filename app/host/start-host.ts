// Starts everything behind the renderer: host services, the default device, the local web host.
// Web mode and Electron mode share this; they differ only in how the bridge is carried.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Dispatcher } from './dispatch.ts';
import { HostServices } from './services.ts';
import { InProcessDevice } from './inprocess-device.ts';
import { startHostedDevice, type HostedDevice } from './hosted.ts';
import { QemuGuestDevice, qemuAvailability } from './qemu-device.ts';
import { listSerialPorts, serialDevice } from './serial-device.ts';
import { startWebHost, type WebHost } from '../web/server.ts';
import type { Assets } from '../web/bundle.ts';
import type { DeviceLink } from './device.ts';
import type { DeviceTarget, HostCapabilities } from '../../renderer/bridge.ts';

export interface StartHostOptions {
  /** true (web mode): open the WebSocket bridge. false (Electron): IPC carries the bridge. */
  socket: boolean;
  port?: number;
  /** The renderer bundle; web mode builds it with esbuild, Electron ships it prebuilt. */
  assets: () => Promise<Assets>;
  /** The default device: 'hosted' (the hosted OS) or 'inprocess' (a bare sequencer, for tests). */
  device?: 'hosted' | 'inprocess';
  /** The hosted OS's data directory. */
  dataDir?: string;
  /** The hosted OS's fsync policy (tests may use 'never'). */
  fsync?: 'always' | 'never';
  links?: Partial<Record<DeviceTarget, (path?: string) => DeviceLink | Promise<DeviceLink>>>;
  /** Serial ports to offer besides those the system lists (a pty made for a test or a demo). */
  serialPorts?: string[];
  log?: (line: string) => void;
}

export interface RunningHost {
  services: HostServices;
  dispatcher: Dispatcher;
  events: HostServices;
  web: WebHost;
  /** The default device's id. */
  device: string;
  /** The hosted OS when it is the default device. */
  hosted: HostedDevice | null;
  close(): Promise<void>;
}

export const defaultDataDir = () => join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'orbital', 'hosted');

export async function startHost(o: StartHostOptions): Promise<RunningHost> {
  const log = o.log ?? ((l: string) => console.warn(l));
  const ports = () => listSerialPorts(o.serialPorts ?? []);
  const capabilities = async (): Promise<HostCapabilities> => {
    const q = qemuAvailability();
    const serialPorts = await ports();
    return q.ok ? { qemu: true, serialPorts } : { qemu: false, qemuWhyNot: q.why, serialPorts };
  };
  let hosted: HostedDevice | null = null;
  if ((o.device ?? 'hosted') === 'hosted') hosted = await startHostedDevice(o.dataDir ?? defaultDataDir(), o.fsync ? { fsync: o.fsync } : {});
  const links: Partial<Record<DeviceTarget, (path?: string) => DeviceLink | Promise<DeviceLink>>> = {
    hosted: () => hosted ? hosted.link() : new InProcessDevice({ label: 'in-process device' }),
    ...(qemuAvailability().ok ? { qemu: () => new QemuGuestDevice() } : {}),
    serial: async (path?: string) => serialDevice(path, await ports()),
    ...o.links,
  };
  const services = new HostServices({ links, capabilities, mode: o.socket ? 'web' : 'electron', log });
  const dispatcher = new Dispatcher(services.handlers(), log);
  const web = await startWebHost({ dispatcher, events: services, assets: o.assets, bridge: o.socket, log, ...(o.port !== undefined ? { port: o.port } : {}) });
  let device: string;
  try {
    device = (await services.connect('hosted')).id;
  } catch (e) {
    await web.close();
    await hosted?.close();
    throw e;
  }
  return {
    services, dispatcher, events: services, web, device,
    hosted,
    close: async () => { await web.close(); await services.close(); await hosted?.close(); },
  };
}
