// Bundlers (rollup.config.ts) and the test runner (vitest.config.ts) load *.wasm as its bytes.
declare module '*.wasm' {
  const bytes: Uint8Array<ArrayBuffer>;
  export default bytes;
}
