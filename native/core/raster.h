// Per-pixel rasterisation math shared by the training ops (native/raster), the CPU reference
// renderer (render_ref) and, by porting, the WGSL player. Every function is templated on the
// real type R so the finite-difference tests can run the same code in double; the ops and the
// player use float.
//
// Conventions (the WGSL port must follow them exactly)
//   Pixels: (x, y) with (0,0) top-left; the sample of pixel (x, y) is its centre (x+0.5, y+0.5),
//     in NDC px = 2(x+0.5)/W - 1, py = 1 - 2(y+0.5)/H (model.h's clip_to_pixel inverted).
//   Triangles: clip-space vertices (x, y, z, w). A triangle with any w <= 0 is dropped (no
//     clipping: the head is always in front of the camera), and so is a degenerate one (see
//     kMinAreaRatio). Both facings are drawn.
//   Coverage: perspective-correct barycentrics are l_i = c_i / S, with
//     c_i = a_j b_k - a_k b_j ((i,j,k) cyclic), a_v = x_v - px w_v, b_v = y_v - py w_v,
//     S = c_0 + c_1 + c_2 (evaluated through the plane coefficients of tri_setup).
//     A pixel is covered when S != 0 and every c_i has S's sign or is zero (edges inclusive on
//     both sides, so a pixel exactly on a shared edge is covered by both triangles and resolved
//     by the depth rule). Depth is NDC z = sum c_i z_i / sum c_i w_i; covered only if in [-1, 1].
//   Visibility: the smallest depth wins; equal depths go to the smaller triangle id. The result
//     therefore does not depend on the order triangles are processed in.
//   Rasteriser output per pixel: tri id (-1 for background), (l_1, l_2) and depth; l_0 = 1-l_1-l_2.
//   Antialiasing (see aa_pair below): RGBA premultiplied colours (covered pixel: (rgb, 1),
//     background: 0); every horizontal and vertical pair of adjacent pixels is checked once;
//     the result of a pixel is a gather over its own value and its 4 neighbours' pairs.
//   Compositing: out = rgb_premultiplied + (1 - alpha) * background, alpha in [0, 1] is the
//     antialiased coverage. Colours are display-referred values in [0, 1] (no gamma handling).
#pragma once
#include "common.h"

namespace dyntet {

// Pixel centre in NDC.
template <class R>
DT_HD void pixel_ndc(int x, int y, int width, int height, R& px, R& py) {
  px = R(2) * (R(x) + R(0.5)) / R(width) - R(1);
  py = R(1) - R(2) * (R(y) + R(0.5)) / R(height);
}

// Plane coefficients of one triangle: c_i(px, py) = e[i][0] + e[i][1] px + e[i][2] py,
// zn(px, py) = sum c_i z_i as zc[0] + zc[1] px + zc[2] py. valid = 0 for a dropped triangle.
template <class R>
struct TriSetup {
  R e[3][3];
  R zc[3];
  R wc[3];
  int valid;
};

// Pixel-space position of a clip vertex.
template <class R>
DT_HD void clip_to_px(const R* v, int width, int height, R& sx, R& sy) {
  sx = (v[0] / v[3] * R(0.5) + R(0.5)) * R(width);
  sy = (R(0.5) - v[1] / v[3] * R(0.5)) * R(height);
}

// Drop rule for degenerate triangles: seen edge-on, rounding gives the barycentric signs of a
// zero-area triangle at random, so a triangle is drawn only if twice its pixel-space area exceeds
// kMinAreaRatio times its longest pixel-space edge squared (a sliver thinner than 1e-3 of its
// length covers almost no pixel centres anyway).
constexpr double kMinAreaRatio = 1e-3;

template <class R>
DT_HD TriSetup<R> tri_setup(const R* v0, const R* v1, const R* v2, int width, int height) {
  TriSetup<R> s;
  const R* v[3] = {v0, v1, v2};
  s.valid = (v0[3] > R(0) && v1[3] > R(0) && v2[3] > R(0)) ? 1 : 0;
  if (s.valid) {
    R sx[3], sy[3];
    for (int i = 0; i < 3; ++i) clip_to_px(v[i], width, height, sx[i], sy[i]);
    const R a2 = (sx[1] - sx[0]) * (sy[2] - sy[0]) - (sy[1] - sy[0]) * (sx[2] - sx[0]);
    R l2 = R(0);
    for (int i = 0; i < 3; ++i) {
      const R dx = sx[(i + 1) % 3] - sx[i], dy = sy[(i + 1) % 3] - sy[i];
      const R e2 = dx * dx + dy * dy;
      l2 = e2 > l2 ? e2 : l2;
    }
    const R aa = a2 < R(0) ? -a2 : a2;
    if (!(aa > R(kMinAreaRatio) * l2)) s.valid = 0;  // also rejects NaN
  }
  for (int i = 0; i < 3; ++i) {
    const R* p = v[(i + 1) % 3];
    const R* q = v[(i + 2) % 3];
    // c_i = a_p b_q - a_q b_p expanded; the px*py terms cancel.
    s.e[i][0] = p[0] * q[1] - q[0] * p[1];
    s.e[i][1] = q[3] * p[1] - p[3] * q[1];
    s.e[i][2] = q[0] * p[3] - p[0] * q[3];
  }
  for (int k = 0; k < 3; ++k) {
    s.zc[k] = s.e[0][k] * v0[2] + s.e[1][k] * v1[2] + s.e[2][k] * v2[2];
    s.wc[k] = s.e[0][k] * v0[3] + s.e[1][k] * v1[3] + s.e[2][k] * v2[3];
  }
  return s;
}

// Evaluates coverage at NDC (px, py). Returns 1 if covered, with l1, l2 and depth.
template <class R>
DT_HD int tri_eval(const TriSetup<R>& s, R px, R py, R& l1, R& l2, R& depth) {
  if (!s.valid) return 0;
  R c[3];
  for (int i = 0; i < 3; ++i) c[i] = s.e[i][0] + s.e[i][1] * px + s.e[i][2] * py;
  const R S = c[0] + c[1] + c[2];
  if (S == R(0)) return 0;
  if (S > R(0)) {
    if (c[0] < R(0) || c[1] < R(0) || c[2] < R(0)) return 0;
  } else {
    if (c[0] > R(0) || c[1] > R(0) || c[2] > R(0)) return 0;
  }
  const R zn = s.zc[0] + s.zc[1] * px + s.zc[2] * py;
  const R wn = s.wc[0] + s.wc[1] * px + s.wc[2] * py;
  depth = zn / wn;
  if (!(depth >= R(-1) && depth <= R(1))) return 0;  // also rejects NaN
  l1 = c[1] / S;
  l2 = c[2] / S;
  return 1;
}

// Whether candidate (depth d, id t) beats the current best (bd, bt).
template <class R>
DT_HD bool depth_less(R d, int t, R bd, int bt) {
  return bt < 0 || d < bd || (d == bd && t < bt);
}

// Backward of (l1, l2) at NDC (px, py) to the 12 clip coordinates of the triangle.
template <class R>
DT_HD void bary_backward(const R* v0, const R* v1, const R* v2, R px, R py, R g1, R g2, R* gv0, R* gv1, R* gv2) {
  const R* v[3] = {v0, v1, v2};
  R* gv[3] = {gv0, gv1, gv2};
  R a[3], b[3], c[3];
  for (int i = 0; i < 3; ++i) { a[i] = v[i][0] - px * v[i][3]; b[i] = v[i][1] - py * v[i][3]; }
  for (int i = 0; i < 3; ++i) { const int j = (i + 1) % 3, k = (i + 2) % 3; c[i] = a[j] * b[k] - a[k] * b[j]; }
  const R S = c[0] + c[1] + c[2];
  for (int i = 0; i < 3; ++i) for (int k = 0; k < 4; ++k) gv[i][k] = R(0);
  if (S == R(0)) return;
  const R l1 = c[1] / S, l2 = c[2] / S;
  // dL/dc_i = (g_i - g1 l1 - g2 l2) / S with g_0 = 0.
  const R dot = g1 * l1 + g2 * l2;
  const R gc[3] = {-dot / S, (g1 - dot) / S, (g2 - dot) / S};
  R ga[3] = {R(0), R(0), R(0)}, gb[3] = {R(0), R(0), R(0)};
  for (int i = 0; i < 3; ++i) {
    const int j = (i + 1) % 3, k = (i + 2) % 3;
    ga[j] += gc[i] * b[k]; gb[k] += gc[i] * a[j];
    ga[k] -= gc[i] * b[j]; gb[j] -= gc[i] * a[k];
  }
  for (int i = 0; i < 3; ++i) {
    gv[i][0] = ga[i];
    gv[i][1] = gb[i];
    gv[i][3] = -px * ga[i] - py * gb[i];
  }
}

// ---------------------------------------------------------------------------------------------
// Attribute interpolation: out = l0 a0 + l1 a1 + l2 a2.
template <class R>
DT_HD R interp(R a0, R a1, R a2, R l1, R l2) { return a0 + l1 * (a1 - a0) + l2 * (a2 - a0); }

// ---------------------------------------------------------------------------------------------
// Analytic silhouette antialiasing of one pixel pair (p, q), p left of / above q.
//   Let F be the front side: if exactly one pixel is covered, that pixel's triangle; if both are
//   covered by different triangles, the one with the smaller (depth, id); equal ids: no edge.
//   Along the segment from F's pixel centre (t = 0) to the other centre (t = 1) in pixel space,
//   the silhouette is the first edge of F (projected to pixels) that the segment leaves F by:
//   edge k (opposite vertex k) with e_k(F-pixel) >= 0 > e_k(other) after orienting e_k to be
//   non-negative inside, crossing at t = e_F / (e_F - e_O); the smallest t wins (ties: smaller
//   k). The edge counts only if it is a silhouette edge of the mesh (sil mask bit k of F, from
//   the mesh adjacency: no neighbour across it, or the neighbour faces the other way), and if
//   the other pixel's triangle does not share it. Then with C_F, C_O the two colours:
//     t > 1/2: the other pixel takes coverage (t - 1/2) of F: O += (t - 1/2)(C_F - C_O);
//     t < 1/2: F's pixel loses coverage (1/2 - t) to O:    F += (1/2 - t)(C_O - C_F).
//   A pixel sums the changes of its up to 4 pairs. aa_pair returns which pixel changes
//   (0 none, 1 p, 2 q) and its weight w = |t - 1/2|: changed += w (C_other - C_changed).
struct AaEdge {
  int side;   // 0: no antialiasing; 1: p changes; 2: q changes
  int front;  // 0: F is p; 1: F is q
  int edge;   // F's edge index k (between vertices k+1 and k+2 mod 3)
};


// Edge function of edge (A, B) at P in pixel space.
template <class R>
DT_HD R edge_fn(R ax, R ay, R bx, R by, R x, R y) { return (bx - ax) * (y - ay) - (by - ay) * (x - ax); }

// Where the segment F-pixel (fx, fy) -> other pixel (ox, oy) leaves one triangle given by its
// pixel-space corners (sx[i], sy[i]): the exit parameter t = e_F / (e_F - e_O) of the edge whose
// oriented edge function decreases along the segment and is crossed first (ties: the smaller
// edge index k; edge k runs from corner k+1 to corner k+2). Returns -1 (edge -1) for a triangle
// of zero image area.
template <class R>
DT_HD R aa_exit_px(const R sx[3], const R sy[3], R fx, R fy, R ox, R oy, int& edge_out) {
  // Orientation: the edge function of edge k is positive on vertex k's side.
  const R area = edge_fn(sx[1], sy[1], sx[2], sy[2], sx[0], sy[0]);
  edge_out = -1;
  if (!(area != R(0))) return R(-1);
  const R sgn = area > R(0) ? R(1) : R(-1);
  R best = R(0);
  for (int k = 0; k < 3; ++k) {
    const int i = (k + 1) % 3, j = (k + 2) % 3;
    const R ef = sgn * edge_fn(sx[i], sy[i], sx[j], sy[j], fx, fy);
    const R eo = sgn * edge_fn(sx[i], sy[i], sx[j], sy[j], ox, oy);
    if (eo < ef) {
      const R t = ef / (ef - eo);
      if (edge_out < 0 || t < best) { best = t; edge_out = k; }
    }
  }
  return edge_out >= 0 ? best : R(-1);
}

// aa_exit_px for a triangle given by three clip vertices.
template <class R>
DT_HD R aa_exit(const R* const* verts, int width, int height, R fx, R fy, R ox, R oy, int& edge_out) {
  R sx[3], sy[3];
  for (int i = 0; i < 3; ++i) clip_to_px(verts[i], width, height, sx[i], sy[i]);
  return aa_exit_px(sx, sy, fx, fy, ox, oy, edge_out);
}

// Backward of t = ef / (ef - eo) for the edge from pixel-space point A = (ax, ay) to B = (bx, by)
// (edge k of F runs from vertex k+1 to vertex k+2): writes dL/dA into ga[2] and dL/dB into gb[2]
// from gt = dL/dt. When |ef - eo| < 1e-12 px^2 (an edge along the line through both pixel centres,
// or shorter than rounding) the crossing is undefined to first order and the gradients are zero:
// (ef - eo)^2 would underflow and turn them into Inf/NaN.
template <class R>
DT_HD void aa_crossing_backward_px(R ax, R ay, R bx, R by, R fx, R fy, R ox, R oy, R gt, R ga[2], R gb[2]) {
  // The orientation sign cancels in ef / (ef - eo).
  const R ef = edge_fn(ax, ay, bx, by, fx, fy);
  const R eo = edge_fn(ax, ay, bx, by, ox, oy);
  const R d = ef - eo;
  if (!(d > R(1e-12) || d < R(-1e-12))) {
    ga[0] = ga[1] = gb[0] = gb[1] = R(0);
    return;
  }
  // -eo / d = 1 - t and ef / d = t lie in [0, 1] for a crossing, so dividing twice by d cannot
  // overflow where d * d would underflow.
  const R gef = gt * (-eo / d) / d;
  const R geo = gt * (ef / d) / d;
  // de/dA = (By - Py, Px - Bx), de/dB = (Py - Ay, Ax - Px).
  ga[0] = gef * (by - fy) + geo * (by - oy);
  ga[1] = gef * (fx - bx) + geo * (ox - bx);
  gb[0] = gef * (fy - ay) + geo * (oy - ay);
  gb[1] = gef * (ax - fx) + geo * (ax - ox);
}

// Backward of t = ef / (ef - eo) for edge k of F to F's clip vertices i = k+1, j = k+2 (mod 3).
template <class R>
DT_HD void aa_crossing_backward(const R* const* verts, int width, int height, R fx, R fy, R ox, R oy, int k, R gt,
                                R* gvi, R* gvj) {
  const int i = (k + 1) % 3, j = (k + 2) % 3;
  R ax, ay, bx, by;
  clip_to_px(verts[i], width, height, ax, ay);
  clip_to_px(verts[j], width, height, bx, by);
  R ga[2], gb[2];
  aa_crossing_backward_px(ax, ay, bx, by, fx, fy, ox, oy, gt, ga, gb);
  const R* vs[2] = {verts[i], verts[j]};
  R* gs[2] = {gvi, gvj};
  const R gx[2] = {ga[0], gb[0]}, gy[2] = {ga[1], gb[1]};
  for (int n = 0; n < 2; ++n) {
    const R* v = vs[n];
    const R hw = R(0.5) * R(width), hh = R(0.5) * R(height);
    gs[n][0] = gx[n] * hw / v[3];
    gs[n][1] = -gy[n] * hh / v[3];
    gs[n][2] = R(0);
    gs[n][3] = -gx[n] * hw * v[0] / (v[3] * v[3]) + gy[n] * hh * v[1] / (v[3] * v[3]);
  }
}


// Signed pixel-space area (times 2) of triangle tv: its facing in the image.
template <class R>
DT_HD R screen_area(const R* clip, const int* tv, int width, int height) {
  R sx[3], sy[3];
  for (int i = 0; i < 3; ++i) clip_to_px(clip + 4 * (int64_t)tv[i], width, height, sx[i], sy[i]);
  return edge_fn(sx[1], sy[1], sx[2], sy[2], sx[0], sy[0]);
}

template <class R>
DT_HD bool tri_drawn(const R* clip, const int* tv) {
  return clip[4 * (int64_t)tv[0] + 3] > R(0) && clip[4 * (int64_t)tv[1] + 3] > R(0) && clip[4 * (int64_t)tv[2] + 3] > R(0);
}

// Silhouette mask of triangle t: bit k when edge k (vertices k+1, k+2) has no neighbour
// (adj < 0), a dropped neighbour, or a neighbour facing the other way in the image. adj [T][3]
// holds the triangle across each edge (-1: boundary, -2: more than two triangles share it).
template <class R>
DT_HD unsigned char silhouette_mask(const R* clip, const int* tris, const int* adj, int64_t t, int width, int height) {
  const int* tv = tris + 3 * t;
  if (!tri_drawn(clip, tv)) return 0;
  const R a = screen_area(clip, tv, width, height);
  unsigned char m = 0;
  for (int k = 0; k < 3; ++k) {
    const int n = adj[3 * t + k];
    bool s = true;
    if (n >= 0) {
      const int* nv = tris + 3 * (int64_t)n;
      // Consistently wound neighbours run the shared edge in opposite directions, so equal
      // screen-area signs mean both face the same way.
      s = !tri_drawn(clip, nv) || (a > R(0)) != (screen_area(clip, nv, width, height) > R(0));
    }
    if (s) m |= (unsigned char)(1 << k);
  }
  return m;
}

// The antialiasing decision for pixel pair (p, q): p is the left (or upper) pixel, both in one
// frame whose per-pixel arrays start at id/depth; (xp, yp), (xq, yq) their pixel coordinates.
// Evaluated identically from either pixel, so a gather over pairs is consistent.
//
// Finding the silhouette: start in F and follow the segment F-pixel -> other pixel across the
// mesh: leave the current triangle through its exit edge (aa_exit); if that edge is a
// silhouette edge (sil bit), it is the silhouette; otherwise step into the triangle across it
// (adj) and continue, at most kAaMaxWalk triangles. With triangles smaller than a pixel the rim
// pixel's own triangle rarely holds the silhouette edge, so the walk is what finds it. No
// antialiasing when the segment ends inside a triangle (t > 1), the walk runs out, or the edge is
// shared with the other pixel's triangle. t is clamped to [0, 1].
constexpr int kAaMaxWalk = 16;

template <class R>
struct AaPair {
  int side;   // 0: nothing changes; 1: p changes; 2: q changes
  int front;  // 0: F is p's triangle; 1: q's
  int tri;    // the triangle whose edge is the silhouette (F or one reached from it)
  int edge;   // its silhouette edge k
  R t;        // crossing along F-pixel -> other pixel
  R w;        // |t - 1/2|
};

template <class R>
DT_HD AaPair<R> aa_pair(const int* id, const R* depth, const int* tris, const R* clip, const unsigned char* sil, const int* adj,
                        int width, int height, int64_t ip, int64_t iq, int xp, int yp, int xq, int yq) {
  AaPair<R> r;
  r.side = 0; r.front = 0; r.tri = -1; r.edge = -1; r.t = R(0); r.w = R(0);
  const int tp = id[ip], tq = id[iq];
  if (tp == tq) return r;
  int front;
  if (tp < 0) front = 1;
  else if (tq < 0) front = 0;
  else front = depth_less(depth[ip], tp, depth[iq], tq) ? 0 : 1;
  const int tf = front ? tq : tp, to = front ? tp : tq;
  const R fx = R(front ? xq : xp) + R(0.5), fy = R(front ? yq : yp) + R(0.5);
  const R ox = R(front ? xp : xq) + R(0.5), oy = R(front ? yp : yq) + R(0.5);
  int cur = tf, k = -1;
  R t = R(0);
  bool found = false;
  for (int step = 0; step < kAaMaxWalk; ++step) {
    const int* tv = tris + 3 * (int64_t)cur;
    const R* verts[3] = {clip + 4 * (int64_t)tv[0], clip + 4 * (int64_t)tv[1], clip + 4 * (int64_t)tv[2]};
    t = aa_exit(verts, width, height, fx, fy, ox, oy, k);
    if (k < 0 || !(t <= R(1))) return r;
    if ((sil[cur] >> k) & 1) { found = true; break; }
    const int n = adj[3 * (int64_t)cur + k];
    if (n < 0) return r;
    cur = n;
  }
  if (!found) return r;
  const int* tv = tris + 3 * (int64_t)cur;
  if (to >= 0) {
    const int* ov = tris + 3 * (int64_t)to;
    const int ea = tv[(k + 1) % 3], eb = tv[(k + 2) % 3];
    const bool has_a = ov[0] == ea || ov[1] == ea || ov[2] == ea;
    const bool has_b = ov[0] == eb || ov[1] == eb || ov[2] == eb;
    if (has_a && has_b) return r;
  }
  if (t < R(0)) t = R(0);
  if (t > R(0.5)) r.side = front ? 1 : 2;       // the other pixel takes F's colour
  else if (t < R(0.5)) r.side = front ? 2 : 1;  // F's pixel takes the other colour
  else return r;
  r.front = front; r.tri = cur; r.edge = k; r.t = t;
  r.w = t > R(0.5) ? t - R(0.5) : R(0.5) - t;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Compositing over the background.
template <class R>
DT_HD R composite(R premul, R alpha, R bg) { return premul + (R(1) - alpha) * bg; }

}  // namespace dyntet
