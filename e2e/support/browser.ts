// Headless Chromium with WebGPU on SwiftShader (flags verified for these machines; never
// --disable-gpu, which breaks the canvas path). CHROMIUM overrides the executable.
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu', '--enable-features=Vulkan',
  '--use-vulkan=swiftshader', '--use-angle=swiftshader',
  // window.gc() and exact performance.memory for the leak test.
  '--js-flags=--expose-gc', '--enable-precise-memory-info',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}
