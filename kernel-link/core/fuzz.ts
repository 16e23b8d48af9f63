// The fuzzer of the framing and message layers: random and mutated byte streams, fed in random
// chunks to the decoder, every frame to the message decoder, and the whole lot to a device-side
// session. It checks that nothing throws, that the decoder never holds more than one frame, and
// how long the slowest input took. Pure: rng and clock are arguments. Used by a test (small
// count) and by `npm run bench -- link` (≥ 1,000,000 inputs).
import { encodeFrame, FrameDecoder, stuffText, type FrameSink } from './frame.ts';
import { decodeMessage, encodeMessage, type Message } from './messages.ts';
import { MemoryDevice } from './memory-device.ts';
import { serveLink } from './server.ts';
import { BaseTransport } from './transport.ts';

export interface FuzzReport { inputs: number; bytes: number; frames: number; drops: number; badMessages: number; maxInputMs: number; maxBuffered: number; serverInputs: number; failures: string[] }

class SinkTransport extends BaseTransport {
  readonly name = 'fuzz';
  written = 0;
  write(b: Uint8Array): boolean { this.written += b.length; return true; }
  feed(b: Uint8Array): void { this.deliver(b); }
  protected doClose(): void {}
}

const seeds = (): Uint8Array[] => {
  const te = new TextEncoder();
  const msgs: Message[] = [
    { t: 'hello', rid: 1, min: 1, max: 1, client: 'fuzz', maxFrame: 4096, consoleWindow: 0, caps: ['x'] },
    { t: 'ping', rid: 2 },
    { t: 'propose', rid: 3, proposal: { actor: 1, id: 1, domain: 1, action: 'echo', args: { text: 'hi' }, time: 0 } },
    { t: 'subscribe', rid: 4, from: 0, prev: new Uint8Array(32), window: 4096 },
    { t: 'credit', stream: 4, limit: 9000 },
    { t: 'entries', stream: 4, seq: 0, entries: [new Uint8Array(70).fill(0xff)] },
    { t: 'close', reason: 'normal', detail: '' },
  ];
  const frames = msgs.map((m) => { const e = encodeMessage(m); return encodeFrame(e.type, e.payload); });
  return [...frames, stuffText(te.encode('boot: ok\r\n')), stuffText(Uint8Array.of(0xff, 0xfe, 0x00, 0x4c))];
};

export function runFuzz(count: number, rng: () => number, now: () => number, opts: { maxFrame?: number; serverEvery?: number } = {}): FuzzReport {
  const maxFrame = opts.maxFrame ?? 4096;
  const corpus = seeds();
  const r: FuzzReport = { inputs: 0, bytes: 0, frames: 0, drops: 0, badMessages: 0, maxInputMs: 0, maxBuffered: 0, serverInputs: 0, failures: [] };
  const int = (n: number) => Math.floor(rng() * n);
  const sink: FrameSink = {
    text: () => {},
    frame: (t, p) => { r.frames++; if (!decodeMessage(t, p).ok) r.badMessages++; },
    drop: () => { r.drops++; },
  };
  const dev = new MemoryDevice();
  const side = new SinkTransport();
  serveLink(side, dev, { maxFrame, announce: false });
  const serverEvery = opts.serverEvery ?? 10;
  for (let i = 0; i < count; i++) {
    let input: Uint8Array;
    const mode = int(4);
    if (mode === 0) input = Uint8Array.from({ length: int(64) }, () => (rng() < 0.1 ? 0xff : int(256)));
    else {
      // splice 1-3 corpus pieces, then mutate 1-4 times
      const parts: Uint8Array[] = [];
      for (let k = 1 + int(3); k > 0; k--) parts.push(corpus[int(corpus.length)]!);
      let b: number[] = parts.flatMap((p) => [...p]);
      for (let m = 1 + int(4); m > 0; m--) {
        const at = int(b.length + 1);
        switch (int(7)) {
          case 0: if (b.length) b[at % b.length] = b[at % b.length]! ^ (1 << int(8)); break;
          case 1: b.splice(at, 1 + int(8)); break;
          case 2: b.splice(at, 0, ...Array.from({ length: 1 + int(6) }, () => int(256))); break;
          case 3: b.splice(at, 0, 0xff, [0x4c, 0x00, 0x41][int(3)]!); break;
          case 4: b = b.slice(0, at); break;
          case 5: if (b.length) { const from = int(b.length); b.splice(at, 0, ...b.slice(from, from + 1 + int(16))); } break;
          case 6: if (at + 8 <= b.length) { b[at + 4] = int(256); b[at + 5] = int(256); } break; // lengths
        }
      }
      input = Uint8Array.from(b);
    }
    const t0 = now();
    try {
      const d = new FrameDecoder({ maxFrame });
      let pos = 0;
      while (pos < input.length) { const n = 1 + int(input.length - pos); d.push(input.subarray(pos, pos + n), sink); pos += n; r.maxBuffered = Math.max(r.maxBuffered, d.buffered); }
      d.end(sink);
      if (i % serverEvery === 0) { side.feed(input); r.serverInputs++; }
    } catch (e) {
      if (r.failures.length < 10) r.failures.push(`input ${i} (${Array.from(input, (x) => x.toString(16).padStart(2, '0')).join('')}): ${String(e)}`);
    }
    r.maxInputMs = Math.max(r.maxInputMs, now() - t0);
    r.inputs++; r.bytes += input.length;
  }
  return r;
}
