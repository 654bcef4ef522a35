# Predict at the training scale (--scale 32) and at the native scale (--scale 0) on CIFAR test birds
# upscaled 8x, scored against the upscaled originals; writes a sheet (original, gray, both colourings).
# usage: python3 tests/scale_demo.py COLORIZE LAB_MODEL OUT.png   (needs numpy, scikit-image; not run by CI)
import os, pickle, subprocess, sys, tempfile
import numpy as np
from skimage.color import rgb2lab
from skimage.transform import resize
from skimage import io
B, MODEL, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
d = pickle.load(open(os.path.join(os.environ.get('DATA', '../shared/cifar/cifar-10-batches-py'), 'test_batch'), 'rb'), encoding='bytes')
x = np.array(d[b'data']); y = np.array(d[b'labels'])
birds = x[y == 2].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
tmp = tempfile.mkdtemp()
def read_ppm(p):
    b = open(p, 'rb').read(); parts = b.split(b'\n', 3); w, h = map(int, parts[1].split())
    return np.frombuffer(parts[3], np.uint8).reshape(h, w, 3)
rows, stats = [], {'32': [], '0': []}
for i in range(20):
    big = (resize(birds[i], (256, 256), order=1) * 255).round().astype(np.uint8)
    open(f'{tmp}/in.ppm', 'wb').write(b'P6\n256 256\n255\n' + big.tobytes())
    gray = np.repeat((rgb2lab(big)[..., :1] * 0 + (0.2125*big[...,0]+0.7154*big[...,1]+0.0721*big[...,2])[...,None]).round().astype(np.uint8), 3, -1)
    outs = []
    for s in ['32', '0']:
        subprocess.run([B, 'predict', '--scale', s, MODEL, f'{tmp}/in.ppm', f'{tmp}/o.ppm'], check=True)
        o = read_ppm(f'{tmp}/o.ppm'); outs.append(o)
        lo, lc = rgb2lab(big), rgb2lab(o)
        stats[s].append((np.sqrt(((lo[..., 1:] - lc[..., 1:]) ** 2).sum(-1)).mean(),
                         ((o.astype(float) - big) ** 2).mean(), np.sqrt((lc[..., 1:] ** 2).sum(-1)).mean()))
    if i < 4:
        pad = np.full((256, 8, 3), 128, np.uint8)
        rows.append(np.concatenate([big, pad, gray, pad, outs[0], pad, outs[1]], 1))
for s in ['32', '0']:
    a = np.array(stats[s])
    print(f'--scale {s}: 20 birds at 256x256: a*b* error {a[:,0].mean():.2f}, PSNR {10*np.log10(255**2/a[:,1].mean()):.2f} dB, chroma {a[:,2].mean():.2f}')
sheet = np.concatenate([np.concatenate([r, np.full((8, r.shape[1], 3), 128, np.uint8)], 0) for r in rows], 0)
io.imsave(OUT, sheet[::2, ::2])
