#!/usr/bin/python3
# Scores `colorize predict` on colour photographs: each photo made gray (rgb2gray, rounded to a
# byte, as a PGM), coloured by predict, and compared with its original. Per photo and on average:
#   a*b* error  mean distance of the coloured pixels' a*b* from the original's (CIE Lab, skimage)
#   PSNR        of the 8-bit coloured picture against the 8-bit original (dB)
#   chroma      mean a*b* length; share = mean over photos of it / mean over photos of the originals'
# beside the same figures for the gray input itself and for the per-lightness baseline (each pixel
# the mean a*b* of the CIFAR training pixels of its L* bin, bins of 5 L* units, as the run's
# table), fitted on the training images of --classes (the model's classes; default all).
#
# usage: python3 tests/score_photos.py [--photos DIR] [--sheet OUT.png] [--tsv OUT.tsv]
#                 [--data CIFAR_DIR] [--classes all|0,3,..] [--keep DIR] COLORIZE MODEL [predict options...]
#   COLORIZE may be a predict that takes no model: give MODEL as '-' then.
#   The photos are DIR/*.png|*.ppm|*.jpg (default /work/photos, or $PHOTOS); predict options
#   (--scale, --temperature, -t ...) go to colorize predict as they are.
# Needs python3-numpy, python3-skimage, python3-pil; not run by CI.
import argparse, glob, os, pickle, subprocess, sys, tempfile, time
import numpy as np
from PIL import Image
from skimage.color import rgb2gray, rgb2lab

ap = argparse.ArgumentParser(usage=__doc__)
ap.add_argument('--photos', default=os.environ.get('PHOTOS', '/work/photos'))
ap.add_argument('--sheet', help='write a contact sheet (original, gray, coloured) PNG here')
ap.add_argument('--sheet-height', type=int, default=150, help='height of a sheet row [150]')
ap.add_argument('--tsv', help='write the per-photo figures here')
ap.add_argument('--keep', help='keep the gray inputs and the colourings in this folder')
ap.add_argument('--data', default=os.environ.get('DATA', '/work/shared/cifar/cifar-10-batches-py'))
ap.add_argument('--classes', default='all', help='CIFAR classes of the per-lightness baseline')
ap.add_argument('colorize')
ap.add_argument('model')
args, predict_opts = ap.parse_known_args()

CHROMA_BINS = 20  # chroma.h


def load_rgb(path):
    return np.asarray(Image.open(path).convert('RGB'))


def per_lightness_table(data, classes):
    """(CHROMA_BINS, 2) mean a*b* of the training pixels in each L* bin of 5 units."""
    want = None if classes == 'all' else {int(c) for c in classes.split(',')}
    sums, counts = np.zeros((CHROMA_BINS, 2)), np.zeros(CHROMA_BINS)
    for f in sorted(glob.glob(os.path.join(data, 'data_batch_*'))):
        d = pickle.load(open(f, 'rb'), encoding='bytes')
        x = np.array(d[b'data']).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = np.array(d[b'labels'])
        if want is not None:
            x = x[np.isin(y, list(want))]
        gray = (rgb2gray(x) * 255).round() / 255  # the gray the network sees
        L = rgb2lab(np.repeat(gray[..., None], 3, -1))[..., 0].ravel()
        ab = rgb2lab(x)[..., 1:].reshape(-1, 2)
        bins = np.clip(np.floor(L / 5).astype(int), 0, CHROMA_BINS - 1)
        np.add.at(sums, bins, ab)
        counts += np.bincount(bins, minlength=CHROMA_BINS)
    return sums / np.maximum(counts, 1)[:, None]


def lab_to_rgb8(lab):
    from skimage.color import lab2rgb
    return (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)


def scores(out, orig, lab_o):
    lab_c = rgb2lab(out)
    ab_err = np.sqrt(((lab_c[..., 1:] - lab_o[..., 1:]) ** 2).sum(-1)).mean()
    mse = ((out.astype(float) - orig) ** 2).mean()
    chroma = np.sqrt((lab_c[..., 1:] ** 2).sum(-1)).mean()
    return ab_err, 10 * np.log10(255 ** 2 / mse), chroma


paths = sorted(p for e in ('png', 'ppm', 'jpg', 'jpeg') for p in glob.glob(os.path.join(args.photos, '*.' + e)))
if not paths:
    sys.exit(f'no photos in {args.photos}')
work = args.keep or tempfile.mkdtemp()
os.makedirs(work, exist_ok=True)
names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
origs = [load_rgb(p) for p in paths]
grays = []
for name, o in zip(names, origs):
    g = (rgb2gray(o) * 255).round().astype(np.uint8)
    Image.fromarray(g, 'L').save(os.path.join(work, name + '.pgm'))
    grays.append(g)

cmd = [args.colorize, 'predict', '--format', 'ppm'] + predict_opts + ([] if args.model == '-' else [args.model])
cmd += [os.path.join(work, n + '.pgm') for n in names] + ['-o', os.path.join(work, 'out')]
t0 = time.time()
subprocess.run(cmd, check=True)
seconds = time.time() - t0
cache = os.path.join(tempfile.gettempdir(), 'score_photos-by-L-%s-%s.npy' % (
    os.path.abspath(args.data).replace('/', '_'), args.classes.replace(',', '_')))
if os.path.exists(cache):
    table = np.load(cache)
else:
    table = per_lightness_table(args.data, args.classes)
    np.save(cache, table)

rows = []
for name, o, g in zip(names, origs, grays):
    lab_o = rgb2lab(o)
    col = load_rgb(os.path.join(work, 'out', name + '.ppm'))
    gray3 = np.repeat(g[..., None], 3, -1)
    L = rgb2lab(gray3)[..., 0]
    ab = table[np.clip(np.floor(L / 5).astype(int), 0, CHROMA_BINS - 1)]
    base = lab_to_rgb8(np.concatenate([L[..., None], ab], -1))
    orig_chroma = np.sqrt((lab_o[..., 1:] ** 2).sum(-1)).mean()
    rows.append((name, scores(gray3, o, lab_o), scores(base, o, lab_o), scores(col, o, lab_o), orig_chroma, col, gray3))

head = f'{"photo":14s} {"size":>9s} | {"gray: ab err":>12s} {"PSNR":>6s} | {"by-L: ab err":>12s} {"PSNR":>6s} {"chroma":>6s} | {"colour: ab err":>14s} {"PSNR":>6s} {"chroma":>6s} {"dPSNR":>6s} | {"orig chroma":>11s}'
print(' '.join(cmd[:2] + predict_opts + [args.model]), f'({len(names)} photos, {seconds:.1f} s)')
print(head)
for name, gs, bs, cs, oc, col, _ in rows:
    size = f'{col.shape[1]}x{col.shape[0]}'
    print(f'{name:14s} {size:>9s} | {gs[0]:12.2f} {gs[1]:6.2f} | {bs[0]:12.2f} {bs[1]:6.2f} {bs[2]:6.2f} | {cs[0]:14.2f} {cs[1]:6.2f} {cs[2]:6.2f} {cs[1] - gs[1]:+6.2f} | {oc:11.2f}')
m = lambda i, j: np.mean([r[i][j] for r in rows])
oc = np.mean([r[4] for r in rows])
print(f'{"mean":14s} {"":>9s} | {m(1, 0):12.2f} {m(1, 1):6.2f} | {m(2, 0):12.2f} {m(2, 1):6.2f} {m(2, 2):6.2f} | {m(3, 0):14.2f} {m(3, 1):6.2f} {m(3, 2):6.2f} {m(3, 1) - m(1, 1):+6.2f} | {oc:11.2f}')
print(f'summary: a*b* error {m(3, 0):.2f} (gray {m(1, 0):.2f}, per-lightness {m(2, 0):.2f}); '
      f'PSNR {m(3, 1) - m(1, 1):+.2f} dB over the gray input (per-lightness {m(2, 1) - m(1, 1):+.2f}); '
      f'chroma {100 * m(3, 2) / oc:.0f}% of the originals\' (per-lightness {100 * m(2, 2) / oc:.0f}%)')

if args.tsv:
    with open(args.tsv, 'w') as f:
        f.write('photo\tgray_ab\tgray_psnr\tbyL_ab\tbyL_psnr\tbyL_chroma\tab\tpsnr\tchroma\torig_chroma\n')
        for name, gs, bs, cs, oc_, _, _ in rows:
            f.write('\t'.join([name] + [f'{v:.4f}' for v in (*gs[:2], *bs, *cs, oc_)]) + '\n')

if args.sheet:
    H = args.sheet_height
    pad = 6
    strips = []
    for (name, *_rest), o in zip(rows, origs):
        col, gray3 = _rest[4], _rest[5]
        w = round(o.shape[1] * H / o.shape[0])
        ims = [np.asarray(Image.fromarray(a).resize((w, H), Image.LANCZOS)) for a in (o, gray3, col)]
        gap = np.full((H, pad, 3), 255, np.uint8)
        strips.append(np.concatenate([ims[0], gap, ims[1], gap, ims[2]], 1))
    # Two columns of strips, each padded to the widest.
    width = max(s.shape[1] for s in strips)
    strips = [np.concatenate([s, np.full((H, width - s.shape[1], 3), 255, np.uint8)], 1) for s in strips]
    half = (len(strips) + 1) // 2
    cols = []
    for part in (strips[:half], strips[half:]):
        if len(part) < half:
            part = part + [np.full((H, width, 3), 255, np.uint8)]
        cols.append(np.concatenate([np.concatenate([s, np.full((pad, width, 3), 255, np.uint8)], 0) for s in part], 0))
    sheet = np.concatenate([cols[0], np.full((cols[0].shape[0], 3 * pad, 3), 255, np.uint8), cols[1]], 1)
    Image.fromarray(sheet).save(args.sheet, optimize=True)
    print(f'sheet: {args.sheet} ({sheet.shape[1]}x{sheet.shape[0]})')
