#!/usr/bin/env bash
# Here, before a device call of benchmarks/gpu.sh: the wheels the GPU image lacks
# (ser's own dependencies for Python 3.12 on x86-64; the image has torch, transformers,
# numpy, h5py, pandas, rich, click...) into .whl/, and the code before into .before/
# (BEFORE: a commit, default the one before the extraction pipeline and compiled steps).
# Both are git-ignored; the call carries them: carry [".whl", ".before"] (~50 MiB).
set -eu
cd "$(dirname "$0")/.."
before="${BEFORE:-9c187e8}"
rm -rf .before && mkdir -p .before && git archive "$before" ser | tar -x -C .before
# The commit the call measures: the device's copy keeps another HEAD in its .git.
git rev-parse --short HEAD >.before/measured-commit
mkdir -p .whl
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
for spec in zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0 \
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0 av==18.1.0 opensmile==2.6.0 \
    audobject==0.7.13 audeer==2.7.0 audinterface==1.4.0 audformat==1.4.3 audiofile==1.6.1 \
    audresample==1.3.6 audmath==1.4.4 asttokens==3.0.1 oyaml==1.0 iso3166==3.0.0 \
    iso639-lang==2.6.3; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d .whl "$spec"
done
du -sh .whl .before
