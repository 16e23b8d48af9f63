// A texture page: an RGBA8 texture with a CPU copy. Writers change the CPU copy and mark rects;
// `flush` uploads exactly the marked rects (WebGPU writeTexture / WebGL2 texSubImage2D straight
// from the CPU copy), and counts the bytes, so damage-driven uploads can be measured. After a lost
// device the whole page is uploaded again from the CPU copy: nothing has to be re-rasterized.
import { DataTexture, NearestFilter, NoColorSpace, RGBAFormat, UnsignedByteType, ClampToEdgeWrapping } from 'three/webgpu';
import type { WebGPURenderer } from 'three/webgpu';
import type { Slot } from './packer.ts';

export class TexturePage {
  readonly data: Uint8Array;
  texture: DataTexture;
  private dirty: Slot[] = [];
  private fresh = true;
  /** Texture bytes uploaded since creation (the initial upload included). */
  uploadedBytes = 0;

  constructor(readonly width: number, readonly height: number, readonly label: string) {
    this.data = new Uint8Array(width * height * 4);
    this.texture = this.makeTexture();
  }

  private makeTexture(): DataTexture {
    const t = new DataTexture(this.data, this.width, this.height, RGBAFormat, UnsignedByteType);
    t.magFilter = NearestFilter; t.minFilter = NearestFilter; t.generateMipmaps = false;
    t.wrapS = t.wrapT = ClampToEdgeWrapping; t.flipY = false; t.colorSpace = NoColorSpace;
    t.name = this.label;
    t.needsUpdate = true;
    return t;
  }

  mark(s: Slot): void {
    if (s.w > 0 && s.h > 0 && !this.fresh) this.dirty.push(s);
  }

  /** For a new renderer (device lost): a new texture uploaded whole on its first use. */
  recreate(): void {
    this.texture.dispose();
    this.texture = this.makeTexture();
    this.fresh = true;
    this.dirty = [];
  }

  /** Uploads what changed; returns the bytes uploaded. */
  flush(renderer: WebGPURenderer): number {
    if (this.fresh) {
      renderer.initTexture(this.texture);
      this.fresh = false;
      this.dirty = [];
      const n = this.data.length;
      this.uploadedBytes += n;
      return n;
    }
    if (!this.dirty.length) return 0;
    let n = 0;
    const backend = renderer.backend as unknown as BackendLike;
    for (const r of mergeSlots(this.dirty)) {
      const x = Math.max(0, r.x), y = Math.max(0, r.y);
      const w = Math.min(this.width, r.x + r.w) - x, h = Math.min(this.height, r.y + r.h) - y;
      if (w <= 0 || h <= 0) continue;
      if (backend.isWebGPUBackend) {
        const gpuTex = backend.get(this.texture).texture;
        backend.device.queue.writeTexture(
          { texture: gpuTex, origin: { x, y, z: 0 } },
          this.data as Uint8Array<ArrayBuffer>,
          { offset: (y * this.width + x) * 4, bytesPerRow: this.width * 4, rowsPerImage: h },
          { width: w, height: h, depthOrArrayLayers: 1 },
        );
      } else {
        const gl = backend.gl;
        backend.state.bindTexture(gl.TEXTURE_2D, backend.get(this.texture).textureGPU);
        gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
        gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
        gl.pixelStorei(gl.UNPACK_ALIGNMENT, 4);
        gl.pixelStorei(gl.UNPACK_ROW_LENGTH, this.width);
        gl.pixelStorei(gl.UNPACK_SKIP_PIXELS, x);
        gl.pixelStorei(gl.UNPACK_SKIP_ROWS, y);
        gl.texSubImage2D(gl.TEXTURE_2D, 0, x, y, w, h, gl.RGBA, gl.UNSIGNED_BYTE, this.data);
        gl.pixelStorei(gl.UNPACK_ROW_LENGTH, 0);
        gl.pixelStorei(gl.UNPACK_SKIP_PIXELS, 0);
        gl.pixelStorei(gl.UNPACK_SKIP_ROWS, 0);
      }
      n += w * h * 4;
    }
    this.dirty = [];
    this.uploadedBytes += n;
    return n;
  }

  dispose(): void { this.texture.dispose(); }
}

/** The bits of three's backends this file touches (they are not in three's public types). */
export interface BackendLike {
  isWebGPUBackend: boolean;
  device: { queue: { writeTexture(dst: object, data: Uint8Array<ArrayBuffer>, layout: object, size: object): void }; destroy(): void };
  gl: WebGL2RenderingContext;
  state: { bindTexture(target: number, tex: WebGLTexture): void };
  get(o: object): { texture: object; textureGPU: WebGLTexture };
}

/** Merges rects whose bounding box is no larger than their summed areas (Redox Orbital's rule). */
export function mergeSlots(rs: Slot[]): Slot[] {
  const out: Slot[] = [];
  for (const r0 of rs) {
    let r = r0;
    for (let i = 0; i < out.length; i++) {
      const o = out[i]!;
      const x = Math.min(o.x, r.x), y = Math.min(o.y, r.y);
      const w = Math.max(o.x + o.w, r.x + r.w) - x, h = Math.max(o.y + o.h, r.y + r.h) - y;
      if (w * h <= o.w * o.h + r.w * r.h) { r = { x, y, w, h }; out.splice(i, 1); i = -1; }
    }
    out.push(r);
  }
  return out;
}
