#!/usr/bin/env python3
"""The chroma palette against scikit-learn: every bird pixel of CIFAR-10,
scikit-image's rgb2lab, then KMeans(n_clusters=k, n_init=1) on a*b*.

Not run by CI: needs python3-numpy, python3-sklearn and python3-skimage.

    python3 tests/compare_sklearn_ab.py [--data DIR] [--ks 16,32,64] [--runs 3]
        [--centres FILE]

Prints, for each k, the median over runs (seeds 0, 1, ...) of the fit time,
with each run's inertia_ and iterations, and the time of rgb2lab. --centres
reads lines 'k=K a0 b0 a1 b1 ...' (build/tests/bench_kmeans_ab writes them
with --centres) and prints the inertia of those centres on scikit-image's
a*b*: an independent check of colorize's own figure, and the ratio to
scikit-learn's. Compare with build/tests/bench_kmeans_ab on the same data.
"""
import argparse
import os
import pickle
import statistics
import time

import numpy as np
from skimage.color import rgb2lab
from sklearn.cluster import KMeans

BIRD = 2
FILES = ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]


def load_birds(folder):
    """(N*1024, 3) uint8 pixels of the bird images, in file order."""
    images = []
    for name in FILES:
        with open(os.path.join(folder, name), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"])
        images.append(data[labels == BIRD])
    data = np.concatenate(images)  # (N, 3072): R plane, G plane, B plane
    return data.reshape(-1, 3, 1024).transpose(0, 2, 1).reshape(-1, 3)


def inertia_of(ab, centres):
    """Sum over points of the squared distance to the nearest centre, in chunks."""
    total = 0.0
    c = np.asarray(centres, dtype=np.float64)
    for i in range(0, len(ab), 1 << 20):
        x = ab[i : i + (1 << 20)]
        d = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        total += d.min(axis=1).sum()
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared = os.environ.get("COLORIZE_SHARED_CIFAR", "../shared/cifar")
    parser.add_argument("--data", default=os.path.join(shared, "cifar-10-batches-py"))
    parser.add_argument("--ks", default="16,32,64")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--centres", help="colorize's centres, lines 'k=K a0 b0 a1 b1 ...'")
    args = parser.parse_args()

    rgb = load_birds(args.data)
    print("%d bird pixels" % len(rgb))
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        lab = rgb2lab(rgb.reshape(-1, 1, 3)).reshape(-1, 3)
        times.append(time.perf_counter() - t0)
    print("skimage rgb2lab: %.3f s (median of %d)" % (statistics.median(times), args.runs))
    ab = np.ascontiguousarray(lab[:, 1:3])

    sklearn_inertia = {}
    for k in [int(x) for x in args.ks.split(",")]:
        times, inertias, iterations = [], [], []
        for seed in range(args.runs):
            km = KMeans(n_clusters=k, n_init=1, random_state=seed)
            t0 = time.perf_counter()
            km.fit(ab)
            times.append(time.perf_counter() - t0)
            inertias.append(km.inertia_)
            iterations.append(km.n_iter_)
        sklearn_inertia[k] = statistics.median(inertias)
        print(
            "sklearn k=%d: fit %.3f s (median of %d), inertia %s, iterations %s"
            % (
                k,
                statistics.median(times),
                args.runs,
                " ".join("%.6e" % x for x in inertias),
                " ".join(str(x) for x in iterations),
            )
        )

    if args.centres:
        with open(args.centres) as f:
            for line in f:
                fields = line.split()
                if not fields or not fields[0].startswith("k="):
                    continue
                k = int(fields[0][2:])
                centres = np.array([float(x) for x in fields[1:]]).reshape(-1, 2)
                ours = inertia_of(ab, centres)
                ratio = ours / sklearn_inertia[k] if k in sklearn_inertia else float("nan")
                print(
                    "colorize k=%d centres: inertia on skimage's a*b* %.6e, %.4f x sklearn's median"
                    % (k, ours, ratio)
                )


if __name__ == "__main__":
    main()
