// The canonical SDF to start training from: the head masks' visual hull, bounded in depth.
//
// The default start shape is an ellipsoid, and the silhouette loss has to grow it out to the hair.
// On clips whose hair reaches far beyond it (wide hair at the sides of the head) that growth
// stalls: the surface stops short and the plate shows through. The masks already say where the
// head is in every training frame, so the start shape carves the grid with them instead: a vertex
// is inside when it projects inside the head mask in (nearly) every frame that sees it. A talking
// head turns little, so the hull constrains depth poorly; it is intersected with the ellipsoid
// grown sideways (x and y) but not in depth, and the landmark prior and the photometric loss then
// shape the face.
#pragma once
#include <cstdint>
#include <vector>
#include "../core/grid.h"
#include "../core/model.h"

namespace dyntet {

struct StartShapeOptions {
  float vote = 0.9f;    // inside in at least this fraction of the frames that see the vertex
  float expand = 1.3f;  // the bounding ellipsoid's x and y radii are the init radii times this
};

// Per-vertex SDF (cm, negative inside) of the hull of `n` head masks (H x W bytes each, inside
// where >= 128) seen through `poses` (n x 16, column-major face -> camera) and the camera, cut by
// the ellipsoid (center, radii with x and y scaled by `expand`). Distances come from an exact
// Euclidean distance transform on the grid (anisotropic cells), shifted by half the smallest cell
// so that the zero level lies between inside and outside vertices. `inside_count`, if given,
// receives the number of inside vertices. Throws TrainerError when no vertex is inside.
std::vector<float> start_shape_from_masks(const GridSpec& grid, const Camera& cam, const uint8_t* masks,
                                          const float* poses, int n, const float center[3], const float radii[3],
                                          const StartShapeOptions& opt, int* inside_count = nullptr);

}  // namespace dyntet
