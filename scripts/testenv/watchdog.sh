#!/usr/bin/env bash
# Tears a test control plane down when the process that started it dies without doing so (a crashed or killed test
# worker), so no apiserver or etcd outlives its test run.
# Usage: watchdog.sh <owner pid> <run dir> <remove|keep>
# <run dir>/pgids lists the process groups to stop, one per line (the cluster appends each component as it starts).
owner=$1
dir=$2
mode=$3
while kill -0 "$owner" 2>/dev/null; do sleep 2; done
# The owner is gone; an orphaned half of it (a test worker still inside start-up) may try to stop this script along
# with the components. Finish the teardown regardless.
trap '' TERM INT HUP
stop_groups() {
  local groups pgid alive
  mapfile -t groups < <(cat "$dir/pgids" 2>/dev/null)
  for pgid in "${groups[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    alive=0
    for pgid in "${groups[@]}"; do kill -0 -- "-$pgid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 1
  done
  for pgid in "${groups[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null; done
}
stop_groups
# Once more, for a component the orphaned start-up launched while the first round ran.
stop_groups
if [ "$mode" = remove ] && [ -f "$dir/state.json" ]; then rm -rf -- "$dir"; fi
