# docs/results.png, the README's picture, from two runs' compare.ppm: the first six test
# images of the RGB run (original, gray, target, network) and the Lab run's colouring beside them.
# usage: python3 tools/make_results_png.py RGB_OUT/compare.ppm LAB_OUT/compare.ppm docs/results.png
# (needs python3-pil; the runs: ./colorize DATA -o RGB_OUT; ./colorize --space lab DATA -o LAB_OUT)
import sys
from PIL import Image

CELL, GUTTER, ROWS = 128, 4, 6  # compare.ppm: 32x32 pictures scaled x4, 4-pixel gutters
rgb, lab = Image.open(sys.argv[1]), Image.open(sys.argv[2])
height = GUTTER + ROWS * (CELL + GUTTER)
last = GUTTER + 3 * (CELL + GUTTER)  # the Lab sheet's fourth column: the network's colouring
sheet = Image.new('RGB', (rgb.width + CELL + GUTTER, height), rgb.getpixel((0, 0)))
sheet.paste(rgb.crop((0, 0, rgb.width, height)), (0, 0))
sheet.paste(lab.crop((last, 0, last + CELL + GUTTER, height)), (rgb.width - GUTTER, 0))
sheet.save(sys.argv[3], optimize=True)
