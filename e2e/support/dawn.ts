// WebGPU in Node through npm `webgpu` (Dawn). Without a GPU it runs on Chromium's SwiftShader when
// LD_LIBRARY_PATH / VK_ICD_FILENAMES point at it (see bench/ and ENVIRONMENT notes). The object
// create() returns must stay referenced for the device's lifetime, so it is kept here.
import { create, globals } from 'webgpu';

let gpuInstance: GPU | null = null;

export function nodeGpu(): GPU {
  if (!gpuInstance) {
    Object.assign(globalThis, globals);
    gpuInstance = create([]) as unknown as GPU;
  }
  return gpuInstance;
}

export async function nodeDevice(features: GPUFeatureName[] = []): Promise<{ device: GPUDevice; adapter: GPUAdapter }> {
  const adapter = await nodeGpu().requestAdapter();
  if (!adapter) throw new Error('Dawn found no adapter: set LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json without a GPU');
  const want = features.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredFeatures: want });
  device.addEventListener('uncapturederror', (e) => console.error('WebGPU error:', (e as GPUUncapturedErrorEvent).error.message));
  return { device, adapter };
}
