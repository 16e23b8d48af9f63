// The session's look: sizes in px and colors (0xRRGGBBAA). One place, so the renderer's chrome and
// the reference rasterizer's goldens agree.
export const THEME = {
  panelH: 32,
  titleH: 28,
  border: 1,
  /** Resize handles: edge strip thickness and corner size, inside the window. */
  edge: 5, corner: 12,
  button: 18,
  titleFont: 13, contentFont: 14, panelFont: 12,
  contentPadding: 8,
  panelButtonW: 168,
  clear: 0x000000ff,
  desktop: 0x1d2b3aff,
  panel: 0x10161eff,
  panelButton: 0x26303cff,
  panelButtonFocused: 0x3d5a80ff,
  panelButtonMinimized: 0x181e26ff,
  panelText: 0xdde3eaff,
  windowBg: 0xf4f4f0ff,
  borderFocused: 0x3d7effff,
  borderBlurred: 0x5a6270ff,
  titleFocused: 0x2e4a6fff,
  titleBlurred: 0x444b55ff,
  titleText: 0xffffffff,
  contentText: 0x1a1a1aff,
  closeButton: 0xc84a4aff,
  otherButton: 0x6a7585ff,
  buttonText: 0xffffffff,
} as const;
export type Theme = typeof THEME;
