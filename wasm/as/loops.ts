// AssemblyScript twins of sdk/src/tracks.ts, on raw linear memory with SIMD where the loop is
// data-parallel. Build: asc wasm/as/loops.ts -O3 --runtime stub --enable simd --bindings esm
// (wasm/as/build.mjs). The caller places arrays with alloc() and reads results in place.

export function alloc(bytes: usize): usize {
  return heap.alloc(bytes);
}

export function reset(): void {
  heap.reset();
}

// dst[i] = offset + scale * src[i] for n u16 values; 8 lanes at a time.
export function dequantize16(src: usize, n: i32, scale: f32, offset: f32, dst: usize): void {
  const vs = f32x4.splat(scale);
  const vo = f32x4.splat(offset);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const q = v128.load(src + (<usize>i << 1));
    const lo = f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(q));
    const hi = f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(q));
    v128.store(dst + (<usize>i << 2), f32x4.add(vo, f32x4.mul(vs, lo)));
    v128.store(dst + (<usize>i << 2) + 16, f32x4.add(vo, f32x4.mul(vs, hi)));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), offset + scale * <f32>load<u16>(src + (<usize>i << 1)));
}

// One-pole smoothing in place over frames; channels a multiple of 4 runs 4 lanes at a time.
export function smoothTrack(track: usize, frames: i32, channels: i32, alpha: f32): void {
  const va = f32x4.splat(alpha);
  const stride = <usize>channels << 2;
  for (let f = 1; f < frames; f++) {
    const cur = track + <usize>f * stride;
    const prev = cur - stride;
    let c = 0;
    for (; c + 4 <= channels; c += 4) {
      const p = v128.load(prev + (<usize>c << 2));
      const x = v128.load(cur + (<usize>c << 2));
      v128.store(cur + (<usize>c << 2), f32x4.add(p, f32x4.mul(va, f32x4.sub(x, p))));
    }
    for (; c < channels; c++) {
      const p = load<f32>(prev + (<usize>c << 2));
      store<f32>(cur + (<usize>c << 2), p + alpha * (load<f32>(cur + (<usize>c << 2)) - p));
    }
  }
}

// Linear resampling, frame-major; returns nothing, writes nOut frames at dst.
export function resampleTrack(src: usize, nIn: i32, channels: i32, fpsIn: f64, fpsOut: f64, dst: usize, nOut: i32): void {
  for (let f = 0; f < nOut; f++) {
    const x = (<f64>f * fpsIn) / fpsOut;
    let i0 = <i32>Math.floor(x);
    if (i0 > nIn - 1) i0 = nIn - 1;
    const i1 = i0 + 1 < nIn ? i0 + 1 : nIn - 1;
    const w = <f32>(x - <f64>i0);
    const a = src + (<usize>(i0 * channels) << 2);
    const b = src + (<usize>(i1 * channels) << 2);
    const o = dst + (<usize>(f * channels) << 2);
    for (let c = 0; c < channels; c++) {
      const va = load<f32>(a + (<usize>c << 2));
      store<f32>(o + (<usize>c << 2), va + w * (load<f32>(b + (<usize>c << 2)) - va));
    }
  }
}

// One frame of a baked basis (sdk/src/tracks.ts expandBakedFrame): out = mean + sum_k w[k] basis[k],
// n floats per vector, K vectors laid out one after the other.
export function expandBakedFrame(mean: usize, basis: usize, w: usize, k: i32, n: i32, out: usize): void {
  memory.copy(out, mean, <usize>n << 2);
  for (let j = 0; j < k; j++) {
    const wj = load<f32>(w + (<usize>j << 2));
    if (wj == 0) continue;
    const vw = f32x4.splat(wj);
    const v = basis + (<usize>j * <usize>n << 2);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const o = out + (<usize>i << 2);
      v128.store(o, f32x4.add(v128.load(o), f32x4.mul(vw, v128.load(v + (<usize>i << 2)))));
    }
    for (; i < n; i++) {
      const o = out + (<usize>i << 2);
      store<f32>(o, load<f32>(o) + wj * load<f32>(v + (<usize>i << 2)));
    }
  }
}
