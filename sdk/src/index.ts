/**
 * @dyntet/player: play DynTet talking-head avatars with WebGPU.
 * Everything here is tree-shakable: a page that never calls syntheticModel() does not ship it.
 */
export { Player, setDefaultDecoder } from './player.js';
export type { PlayerOptions, PlayerSource, LoadOptions, ClipInfo, AssetDecoder } from './player.js';
export { PlayerError } from './player_error.js';
export type { PlayerErrorCode } from './player_error.js';
export { Renderer, STAGES, gpuObjectCount } from './renderer.js';
export type { RendererOptions, Stage } from './renderer.js';
export { validateModel, LIMITS } from './model.js';
export type { ModelData, ModelClip, MlpConfig, HashGridConfig, ConditionConfig } from './model.js';
export { syntheticModel } from './synthetic.js';
export type { SyntheticOptions } from './synthetic.js';
export { BLENDSHAPE_NAMES, NUM_BLENDSHAPES, POSE_SIZE, blendshapeIndex, restBlendshapes } from './coefficients.js';
export type { CoefficientFrame, CoefficientTrack, BlendshapeName } from './coefficients.js';
export { resampleTrack, smoothTrack, dequantize16, conditionWindowInto, expandBakedFrame } from './tracks.js';
export type { BakedBasis } from './tracks.js';
export { decodeAsset, assetToModel, AssetError } from './asset.js';
export type { Asset, AssetMetadata, AssetClip, AssetBakedClip, AssetPlate, AssetErrorCode } from './asset.js';
