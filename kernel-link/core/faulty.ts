// A fault-injecting transport for tests: wraps another transport and damages the bytes going
// either way - drop, flip, duplicate, delay - and cuts the connection. Pure: randomness and time
// come in as arguments (a seeded rng makes a failure reproducible).
import { mulberry32 } from '../../axiom/random.ts';
import type { Clock } from './clock.ts';
import { LinkError } from './errors.ts';
import { BaseTransport, type Transport } from './transport.ts';

export interface Faults {
  /** Probability per byte that it is lost. */
  dropByte?: number;
  /** Probability per byte that one of its bits flips. */
  flipByte?: number;
  /** Probability per chunk (one write: usually one frame) that one bit of one of its bytes flips. */
  flipChunk?: number;
  /** Probability per chunk that it is delivered twice. */
  duplicateChunk?: number;
  /** Each chunk is held back up to this many ms (order kept). */
  delayMs?: number;
  /** Probability per chunk that the connection is cut right after it (both ends see a close). */
  cutChunk?: number;
  /**
   * Probability per byte that the connection is cut after the chunk holding it. Unlike cutChunk
   * this does not depend on how the transport chunks its bytes (a serial line delivers a few bytes
   * per chunk, a socket whole frames).
   */
  cutByte?: number;
  /** Cut after this many bytes have passed (in either direction). */
  cutAfterBytes?: number;
}

export interface FaultStats { bytes: number; dropped: number; flipped: number; duplicated: number; cuts: number }

export class FaultyTransport extends BaseTransport {
  readonly name: string;
  readonly stats: FaultStats = { bytes: 0, dropped: 0, flipped: 0, duplicated: 0, cuts: 0 };
  private lastDue = 0;

  constructor(private readonly inner: Transport, private readonly faults: { send?: Faults; receive?: Faults }, private readonly rng: () => number, private readonly clock: Clock) {
    super();
    this.name = `faulty(${inner.name})`;
    inner.attach({
      // A delayed or duplicated chunk outlives data(): copy what a reusing transport lends.
      data: (c) => this.pass(inner.reusesChunks ? c.slice() : c, this.faults.receive, (b) => this.deliver(b)),
      close: (e) => this.closedBy(e),
    });
  }

  private damage(c: Uint8Array, f: Faults): Uint8Array {
    if (f.flipChunk && c.length && this.rng() < f.flipChunk) {
      c = c.slice();
      c[Math.floor(this.rng() * c.length)]! ^= 1 << Math.floor(this.rng() * 8);
      this.stats.flipped++;
    }
    if (!f.dropByte && !f.flipByte) return c;
    const out = new Uint8Array(c.length);
    let n = 0;
    for (let i = 0; i < c.length; i++) {
      let b = c[i]!;
      if (f.dropByte && this.rng() < f.dropByte) { this.stats.dropped++; continue; }
      if (f.flipByte && this.rng() < f.flipByte) { b ^= 1 << Math.floor(this.rng() * 8); this.stats.flipped++; }
      out[n++] = b;
    }
    return out.subarray(0, n);
  }

  private pass(c: Uint8Array, f: Faults | undefined, to: (b: Uint8Array) => void): void {
    if (this.isClosed) return;
    if (!f) { to(c); return; }
    this.stats.bytes += c.length;
    const d = this.damage(c, f);
    const dup = f.duplicateChunk && this.rng() < f.duplicateChunk;
    if (dup) this.stats.duplicated++;
    const cut = (f.cutChunk && this.rng() < f.cutChunk) || (f.cutByte && this.rng() < 1 - (1 - f.cutByte) ** c.length) || (f.cutAfterBytes !== undefined && this.stats.bytes >= f.cutAfterBytes);
    const go = () => {
      if (this.isClosed) return;
      to(d); if (dup) to(d);
      if (cut) this.cut();
    };
    if (f.delayMs) {
      const due = Math.max(this.lastDue, this.clock.now() + this.rng() * f.delayMs);
      this.lastDue = due;
      this.clock.setTimeout(go, due - this.clock.now());
    } else go();
  }

  /** Cuts the connection now (both sides see it close). */
  cut(): void {
    if (this.isClosed) return;
    this.stats.cuts++;
    this.inner.close();
    this.closedBy(new LinkError('disconnected', 'closed', `${this.name}: connection cut (fault injection)`));
  }

  write(bytes: Uint8Array, written?: () => void): boolean {
    if (this.isClosed) return false;
    this.pass(bytes.slice(), this.faults.send, (b) => { this.inner.write(b); });
    written?.(); // copied above
    return true;
  }
  protected doClose(): void { this.inner.close(); }
}

export const seededRng = mulberry32;
