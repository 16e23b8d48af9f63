// The few runtime globals pure code may use: every JavaScript runtime Orbital runs on (Node,
// Chromium, Electron) has them, but lib ES2022 does not declare them. Declared here, and only
// these, so pure folders still cannot touch the DOM or Node.
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array): string;
}
