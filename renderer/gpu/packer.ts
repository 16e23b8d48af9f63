// Shelf packing of rectangles into a fixed-size page. Entries can be freed; when a request does
// not fit, the owner repacks everything (surfaces are re-rasterized from their layers then).
export interface Slot { x: number; y: number; w: number; h: number }

interface Shelf { y: number; h: number; x: number }

export class ShelfPacker {
  private shelves: Shelf[] = [];
  private bottom = 0;
  /** Texels handed out and not freed. */
  used = 0;
  constructor(readonly width: number, readonly height: number, private pad = 1) {}

  alloc(w: number, h: number): Slot | null {
    const pw = w + this.pad, ph = h + this.pad;
    if (pw > this.width) return null;
    let best: Shelf | null = null;
    for (const s of this.shelves) if (s.h >= ph && s.h <= ph * 1.5 + 4 && this.width - s.x >= pw && (!best || s.h < best.h)) best = s;
    if (!best) {
      if (this.bottom + ph > this.height) return null;
      best = { y: this.bottom, h: ph, x: 0 };
      this.shelves.push(best);
      this.bottom += ph;
    }
    const slot = { x: best.x, y: best.y, w, h };
    best.x += pw;
    this.used += w * h;
    return slot;
  }

  /** Forgets a slot's texels (its space is reclaimed by the next reset). */
  free(s: Slot): void { this.used -= s.w * s.h; }

  reset(): void { this.shelves = []; this.bottom = 0; this.used = 0; }

  /** Fraction of the page's rows handed out. */
  get fill(): number { return this.bottom / this.height; }
}
