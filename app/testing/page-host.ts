// Serves one renderer entry point on 127.0.0.1 (no device behind it) for renderer-only browser
// tests: the GPU renderer's goldens, backend detection and device-loss recovery.
import { fileURLToPath } from 'node:url';
import { startWebHost, type WebHost } from '../web/server.ts';
import { Dispatcher, type Handlers } from '../host/dispatch.ts';
import { cachedAssets } from '../web/bundle.ts';

export async function servePage(entryFromRepoRoot: string): Promise<WebHost> {
  const entry = fileURLToPath(new URL(`../../${entryFromRepoRoot}`, import.meta.url));
  const refuse = async () => { throw new Error('no host services in this test page'); };
  const handlers = { hello: refuse, 'device.connect': refuse, 'device.propose': refuse, 'device.log': refuse, 'device.info': refuse, 'device.console': refuse } as unknown as Handlers;
  return startWebHost({ dispatcher: new Dispatcher(handlers, () => {}), events: { subscribe: () => () => {} }, assets: cachedAssets({ entry }), log: () => {} });
}
