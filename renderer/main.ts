// The page's entry: connect the bridge, start the session, report problems on the page itself.
import { connectBridge } from './bridge-client.ts';
import { SessionApp } from './session-app.ts';

async function main() {
  const canvas = document.getElementById('screen') as HTMLCanvasElement;
  try {
    const bridge = await connectBridge();
    const app = await SessionApp.start(bridge, canvas);
    (window as unknown as { __orbital: unknown }).__orbital = {
      snapshot: () => app.snapshot(),
      timelineRowY: (seq: number) => app.timelineRowY(seq),
      loseDevice: () => app.loseDevice(),
    };
    document.title = `Orbital — ${app.renderer.backend}`;
    if ('onClose' in bridge) bridge.onClose(() => { document.title = 'Orbital — disconnected'; fail('The host closed the connection. Restart `npm start` and reload.'); });
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
}

function fail(msg: string) {
  const p = document.createElement('pre');
  p.className = 'fatal';
  p.textContent = `Orbital could not start: ${msg}`;
  document.body.appendChild(p);
  (window as unknown as { __orbitalError: string }).__orbitalError = msg;
}

void main();
