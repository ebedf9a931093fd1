// Shaders are bundled as strings (rollup.config.ts turns `import x from './x.wgsl'` into one).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
