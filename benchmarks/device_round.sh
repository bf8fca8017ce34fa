#!/usr/bin/env bash
# A GPU training round (rounds 5 and 6; round 5 called this file device_round5.sh) on one H200, over
# back-to-back calls on one warm machine. Everything lives in $R (default /root/r5), outside the repo
# copy, so it survives between calls: the code is frozen into $R/code at the first `start`; runs are
# started with setsid and resumed. The runs come from RUNS ("name:config:overrides joined by +", one per
# line; export it: `set -a; source benchmarks/round6_runs.sh; set +a`; SEP replaces + as the separator
# when an override itself holds a +). Every call copies the training
# photo parts it carries (.carry/train-*, benchmarks/prepare_carry.sh) into $R/data/train.
#
#   bash benchmarks/device_round.sh start SECONDS     carry: .whl .carry/train-1 .carry/train-2 .carry/val-base
#       installs the wheels, copies the code, starts every run in RUNS, waits SECONDS, snapshots.
#       A run folder carried as .carry/run-NAME (config.yaml, checkpoints/last.pt, metrics.csv of an
#       earlier round) becomes $R/runs/NAME, so run NAME resumes from it.
#   bash benchmarks/device_round.sh more SECONDS      carry: the other .carry/train-* parts
#       stops each run (SIGTERM: it saves last.pt) and resumes it on all photos copied so far, waits
#       SECONDS, snapshots.
#   bash benchmarks/device_round.sh finish            stops the runs, exports best/last models into
#       $R/models, runs FINISH_CMD (evaluation; M=$R/models) if set, returns the metrics.
#   bash benchmarks/device_round.sh fetch GLOB...     returns files of $R matching the globs (e.g.
#       'models/lite*' 'runs/lite/checkpoints/last.pt'), each under 16 MiB, split into 15 MiB parts
#       otherwise (cat NAME.part-* > NAME); a call returns at most 8 files, so fetch in groups.
# Dry run on a CPU (EXTRA_ARGS: overrides added to every run):
#   DEVICE=cpu PY=.venv/bin/python R=/tmp/r5 OUT=/tmp/o RUNS=... EXTRA_ARGS="train.steps=4 ..." bash benchmarks/device_round.sh start 30
set -uo pipefail
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}; R=${R:-/root/r5}
PHASE=${1:?start, more, finish or fetch}; WAIT=${2:-0}
mkdir -p $R/data/train $R/runs $R/logs $R/models
if [ "$DEVICE" = cuda ] && [ ! -d $R/site ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $R/site .whl/*.whl || exit 1
fi
export PYTHONPATH=$R/site:$R/code SELFDESC_WEIGHTS_DIR=$R/data/weights
for d in .carry/train-*; do [ -d $d ] && cp -r $d/. $R/data/train/; done
for d in val-base strecha weights hpatches-graf synth-base scannet; do [ -d .carry/$d ] && [ ! -d $R/data/$d ] && cp -r .carry/$d $R/data/$d; done
for d in .carry/run-*; do [ -d $d ] && [ ! -d $R/runs/${d#.carry/run-} ] && cp -r $d $R/runs/${d#.carry/run-}; done  # runs to resume
[ -d $R/code ] || { mkdir -p $R/code && cp -r selfdesc configs benchmarks $R/code/; }
echo "$(date +%T) $PHASE: $(ls $R/data/train | wc -l) training photos; data: $(ls $R/data | paste -sd' ')"

launch() {  # name config [overrides+plus+separated]: start or resume (setsid: outlives the call)
  local name=$1 cfg=$2 extra=${3:-}; local resume=""
  [ -f $R/runs/$name/checkpoints/last.pt ] && resume=--resume
  (cd $R/code && setsid nohup $PY -m selfdesc ${CMD_OF[$name]:-train} --config configs/$cfg.yaml --images $R/data/train --device $DEVICE \
    --out $R/runs/$name $resume ${extra//${SEP:-+}/ } train.progress=false ${EXTRA_ARGS:-} >> $R/logs/$name.log 2>&1 < /dev/null & echo $! > $R/runs/$name.pid)
}
stop_all() {
  for p in $R/runs/*.pid; do [ -f $p ] && kill -TERM $(cat $p) 2>/dev/null; done
  for p in $R/runs/*.pid; do [ -f $p ] && while kill -0 $(cat $p) 2>/dev/null; do sleep 1; done; rm -f $p; done
}
status() { for f in $R/logs/*.log; do echo "$(basename $f .log): $(tail -c 600 $f | tr '\r' '\n' | grep -v '^$' | tail -n 1 | cut -c1-160)"; done; }
snapshot() {
  mkdir -p $R/snap; for r in $R/runs/*/; do [ -f $r/metrics.csv ] && cp $r/metrics.csv $R/snap/$(basename $r).csv; done
  cp $R/logs/*.log $R/snap/ 2>/dev/null; tar -czf $OUT/metrics.tar.gz -C $R snap
  # every call brings the resumable checkpoints back (round 8 lost 20 minutes of training with the machine)
  for r in $R/runs/*/; do
    ck=$r/checkpoints/last.pt; [ -f $ck ] && [ $(stat -c %s $ck) -lt 16000000 ] && cp $ck $OUT/$(basename $r)_last.pt
  done
}
watch() {  # seconds
  local end=$(( $(date +%s) + $1 ))
  while [ $(date +%s) -lt $end ]; do
    sleep $(( end - $(date +%s) < 90 ? end - $(date +%s) : 90 )); echo "--- $(date +%T)"; status
    [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; snapshot
  done
}
declare -A CMD_OF
RUNS=${RUNS:-}
for spec in $RUNS; do IFS=: read -r name cfg extra <<< "$spec"; [[ $cfg == matcher* ]] && CMD_OF[$name]=train-matcher; done
case $PHASE in
  start)
    [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    for spec in $RUNS; do IFS=: read -r name cfg extra <<< "$spec"; launch $name $cfg "$extra"; done
    watch $WAIT ;;
  more)
    stop_all; echo "$(date +%T) stopped; resuming on all photos"
    for spec in $RUNS; do IFS=: read -r name cfg extra <<< "$spec"; launch $name $cfg "$extra"; done
    watch $WAIT ;;
  finish)
    stop_all; echo "$(date +%T) stopped"; status; snapshot
    for r in $R/runs/*/; do
      name=$(basename $r)
      for ck in best last; do
        [ -f $r/checkpoints/$ck.pt ] && (cd $R/code && $PY -m selfdesc ${EXPORT_OF:-export-weights} $r $R/models/${name}_$ck.pt --checkpoint $ck.pt > /dev/null) \
          && echo "$name $ck: $(du -h $R/models/${name}_$ck.pt | cut -f1)"
      done
    done
    [ -n "${FINISH_CMD:-}" ] && (cd $R/code && M=$R/models D=$R/data E=$R/eval bash -c "$FINISH_CMD")
    [ -d $R/eval ] && tar -czf $OUT/eval.tar.gz --exclude='*.npy' --exclude='*.h5' -C $R eval
    ls -la $OUT ;;
  fetch)
    shift
    for g in "$@"; do
      for f in $R/$g; do
        [ -f "$f" ] || continue
        n=$(echo "${f#$R/}" | tr / _)
        if [ $(stat -c %s "$f") -lt 16000000 ]; then cp "$f" $OUT/$n; else split -b 15M -d "$f" $OUT/$n.part-; fi
      done
    done
    ls -la $OUT ;;
esac
exit 0
