#!/usr/bin/env bash
# Build the git-ignored folders that GPU calls carry (the device machine has no ../shared and no
# kornia): run once in a checkout, from the repo root, with ../shared beside it.
#   .carry/shard-a        training photos (../shared/data/train/shard-a)
#   .carry/train-{1..4}   all three shards less the validation images, max side 400, JPEG quality 75,
#                         in four parts (about 9.7 MB each: two parts per call, copied into a folder
#                         that persists on the warm machine; benchmarks/downsize_images.py)
#   .carry/speed          32 shard-a photos for extraction-speed runs (benchmarks/device_extract_speed.sh)
#   .carry/weights-min    the XFeat, DISK and ALIKED weights alone (what the speed runs need)
#   .carry/val-base       validation base images: the first 12 photos (sorted) of shard-b
#   .carry/synth-base     every third file (sorted) of eval/synth-base: the held-out synthetic benchmark
#   .carry/hpatches-graf  HPatches v_graffiti (eval/hpatches-graf)
#   .carry/strecha        Strecha scenes with GT cameras (eval/strecha)
#   .carry/scannet        the ScanNet sample pairs (eval/scannet_sample)
#   .carry/weights        peer weights used by benchmarks: DISK, ALIKED-n16, R2D2 WASF-N16, XFeat
#   .whl                  kornia + kornia_rs wheels for the device's Python 3.12
set -euo pipefail
S=${SHARED:-../shared/data}
mkdir -p .carry/val-base .carry/synth-base .carry/weights/{disk,aliked,r2d2,xfeat}
[ -d .carry/shard-a ] || cp -r $S/train/shard-a .carry/shard-a
[ -d .carry/train-1 ] || ${PY:-python3} benchmarks/downsize_images.py --src $S/train --out .carry --max-side 400 --quality 75 --parts 4 --exclude-first 12:shard-b
ls $S/train/shard-b | sort | head -n 12 | while read -r f; do cp $S/train/shard-b/$f .carry/val-base/; done
ls $S/eval/synth-base | sort | awk 'NR % 3 == 1' | while read -r f; do cp $S/eval/synth-base/$f .carry/synth-base/; done
cp -r $S/eval/hpatches-graf $S/eval/strecha .carry/
[ -d .carry/scannet ] || cp -r $S/eval/scannet_sample .carry/scannet
for w in disk/depth-save.pth aliked/aliked-n16.pth r2d2/r2d2_WASF_N16.pt xfeat/xfeat.pt; do cp $S/weights/$w .carry/weights/$w; done
mkdir -p .carry/speed .carry/weights-min/{disk,aliked,xfeat}
ls $S/train/shard-a | sort | head -n 32 | while read -r f; do cp $S/train/shard-a/$f .carry/speed/; done
for w in disk/depth-save.pth aliked/aliked-n16.pth xfeat/xfeat.pt; do cp .carry/weights/$w .carry/weights-min/$w; done
mkdir -p .whl
for p in kornia==0.9.0 kornia_rs==0.2.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $p
done
du -sh .carry/* .whl
