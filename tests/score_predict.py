# Scores `colorize predict` on the bird test images (DATA, default ../shared/cifar/cifar-10-batches-py):
# mean a*b* error, PSNR of the 8-bit colouring, mean chroma (as the run's table).
# usage: python3 tests/score_predict.py COLORIZE MODEL [MODEL...]   (needs numpy, scikit-image; not run by CI)
import os, pickle, subprocess, sys, tempfile
import numpy as np
from skimage.color import rgb2lab
D = os.path.join(os.environ.get('DATA', '../shared/cifar/cifar-10-batches-py'), 'test_batch')
d = pickle.load(open(D, 'rb'), encoding='bytes')
x = np.array(d[b'data']); y = np.array(d[b'labels'])
birds = x[y == 2].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
tmp = tempfile.mkdtemp()
for i, im in enumerate(birds):
    with open(f'{tmp}/b{i:03d}.ppm', 'wb') as f:
        f.write(b'P6\n32 32\n255\n' + im.tobytes())
def read_ppm(p):
    b = open(p, 'rb').read()
    parts = b.split(b'\n', 3)
    return np.frombuffer(parts[3], np.uint8).reshape(32, 32, 3)
lab_o = rgb2lab(birds)
for model in sys.argv[2:]:
    outs = []
    for i in range(len(birds)):
        o = f'{tmp}/o{i:03d}.ppm'
        subprocess.run([sys.argv[1], 'predict', model, f'{tmp}/b{i:03d}.ppm', o], check=True)
        outs.append(read_ppm(o))
    outs = np.array(outs)
    lab_c = rgb2lab(outs)
    ab_err = np.sqrt(((lab_c[..., 1:] - lab_o[..., 1:]) ** 2).sum(-1)).mean()
    mse = ((outs.astype(float) - birds) ** 2).mean()
    chroma = np.sqrt((lab_c[..., 1:] ** 2).sum(-1)).mean()
    print(f'{model}: {len(birds)} bird test images: a*b* error {ab_err:.2f}, PSNR {10*np.log10(255**2/mse):.2f} dB, chroma {chroma:.2f} (originals {np.sqrt((lab_o[...,1:]**2).sum(-1)).mean():.2f})')
