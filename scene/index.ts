// The public entry of the scene layer (pure: no DOM, no Node). The renderer, the timeline
// debugger and the lab's replay import from here.

// Scene graph, layout and text (scene/tree.ts, scene/layout, scene/text).
export * from './tree.ts';
export { FixedShaper, layoutText, type ShapedRun, type FontMetrics } from './text/lines.ts';

// Session domain (domain 2): actions, state, reducer, scene hash.
export { sessionReducer, applyCommit, sceneHash } from './session/reducer.ts';
export { checkAction, LIMITS, SESSION_ACTIONS, type SessionAction, type ActionName, type Checked } from './session/actions.ts';
export { initialState, stateValue, BANDS, MODES, type SessionState, type SessionWindow, type WindowMode, type Band, type RejectCode, type SessionRejection } from './session/state.ts';
export { SessionView, frameAt, type Applied, type ViewError } from './session/view.ts';
export { SessionTimeline, type Seen } from './session/timeline.ts';
export { GOLDEN_SCENES, goldenFrame } from './session/goldens.ts';
export { randomActions, randomAction, mulberry32, type ActionSpec } from './session/random.ts';

// Compositor: frames (layer lists), z-order, damage.
export { SessionScene, type SessionSceneOptions } from './compositor/compose.ts';
export { computeDamage, sameLayer, sameShifted } from './compositor/damage.ts';
export { paintOrder } from './compositor/zorder.ts';
export { mergeDamage, intersect, bbox, area, type Rect } from './compositor/rect.ts';
export { THEME, type Theme } from './compositor/theme.ts';
export { makeIcon, iconName, ICON_SIZE } from './compositor/icons.ts';
export type { Frame, Group, Layer, RectLayer, BorderLayer, TextLayer, ImageLayer, SurfaceLayer, ClipLayer, HitRegion, HitPart, RGBAImage } from './compositor/layers.ts';
export { layerBounds } from './compositor/layers.ts';

// Reference rasterizer (the oracle for damage and for the renderer's goldens).
export { render, renderFull, renderDamage, createRaster, copyRaster, firstDifference, type Raster, type RenderOptions } from './raster/raster.ts';
export { glyphPattern } from './raster/glyphs.ts';

// Semantic input.
export { InputMachine, toProposal, type RawEvent, type Proposed } from './input/input.ts';
export { hitTest, type Hit } from './input/hit.ts';
export { encodePNG } from './raster/png.ts';
