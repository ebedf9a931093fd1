#!/usr/bin/env python3
"""PSNR of renders of one frame against the real frame, at one size, over the full frame, the head
box, the face interior (the middle of the landmarks' box: eyes, nose, mouth; no outline, so
silhouette and hair errors stay out) and the nose (the box of MediaPipe's nose landmarks, grown by
a quarter: a part that barely moves with expression, so its blur is misregistration). Each image is a render over the plate (RGB) or straight
colour with coverage in alpha (RGBA, as `fit` writes eval/ and `renderAssetFrames` writes; it is
composited over the plate here). All images are brought to <size> by area averaging.
Needs python3 with numpy, and ffmpeg.
  python3 bench/region_psnr.py <dataset> <frame> <size> <label>=<image.png> [...]"""
import json, subprocess, sys
import numpy as np

if len(sys.argv) < 5 or sys.argv[1] in ('-h', '--help'):
    print(__doc__)
    sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ('-h', '--help') else 2)
ds, frame, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def load(path, fmt='rgb24', scale=None):
    probe = subprocess.run(['ffprobe', '-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height',
                            '-of', 'csv=p=0', path], capture_output=True, text=True, check=True).stdout.strip().split(',')
    w, h = int(probe[0]), int(probe[1])
    vf = ['-vf', 'scale=%d:%d:flags=area' % (scale, scale)] if scale else []
    raw = subprocess.run(['ffmpeg', '-loglevel', 'error', '-i', path, *vf, '-f', 'rawvideo', '-pix_fmt', fmt, '-'],
                         capture_output=True, check=True).stdout
    n = {'rgb24': 3, 'rgba': 4}[fmt]
    return np.frombuffer(raw, np.uint8).reshape((scale or h), (scale or w), n).astype(np.float64)


def area_resize(img, n):
    k = img.shape[0] // n
    if k * n != img.shape[0]:
        sys.exit('sizes must divide: %d by %d' % (img.shape[0], n))
    return img.reshape(n, k, n, k, img.shape[2]).mean(axis=(1, 3))


meta = json.load(open(ds + '/tracking.json'))
W = meta['width']
real = load('%s/frames/%06d.png' % (ds, frame), scale=size)
plate_full = load(ds + '/background.png')
s = size / W
x0, y0, x1, y1 = meta['frames'][frame]['boxes']['head']
head = (slice(max(0, int(y0 * s)), min(size, int(np.ceil(y1 * s)))), slice(max(0, int(x0 * s)), min(size, int(np.ceil(x1 * s)))))
lm = np.fromfile(ds + '/landmarks.f32', np.float32).reshape(-1, 478, 3)[frame]
xs, ys = lm[:, 0] * s, lm[:, 1] * s
face = (slice(int(np.percentile(ys, 15)), int(np.percentile(ys, 90))), slice(int(np.percentile(xs, 20)), int(np.percentile(xs, 80))))
NOSE = [1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440]
nx, ny = xs[NOSE], ys[NOSE]
gx, gy = (nx.max() - nx.min()) / 8, (ny.max() - ny.min()) / 8
nose = (slice(int(ny.min() - gy), int(np.ceil(ny.max() + gy))), slice(int(nx.min() - gx), int(np.ceil(nx.max() + gx))))


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / ((a - b) ** 2).mean())


print('| render | full | head box | face interior | nose |')
print('| --- | ---: | ---: | ---: | ---: |')
for arg in sys.argv[4:]:
    label, path = arg.split('=', 1)
    try:
        img = load(path, 'rgba')
        if img.shape[0] != plate_full.shape[0]:
            plate = area_resize(plate_full, img.shape[0]) if plate_full.shape[0] > img.shape[0] else load(ds + '/background.png', scale=img.shape[0])
        else:
            plate = plate_full
        a = img[..., 3:] / 255
        comp = img[..., :3] * a + plate * (1 - a)
        if comp.shape[0] != size:
            comp = area_resize(comp, size)
    except subprocess.CalledProcessError:
        sys.exit('cannot read %s' % path)
    print('| %s | %.2f | %.2f | %.2f | %.2f |' % (label, psnr(comp, real), psnr(comp[head], real[head]), psnr(comp[face], real[face]),
                                              psnr(comp[nose], real[nose])))
