#!/bin/sh
# The Docker image's entry point: train.py with the image's data and run folders, after one check.  Docker creates
# a bind-mounted folder that does not exist yet (docker run -v "$PWD/runs:/runs") owned by root, and the image runs
# as uid 1000: train.py could then write nothing.  Refused here in one line with the fix (exit status 2).
# /data is checked only when it is empty: a read-only mount holding the data sets is fine.
set -eu
runs=${RUNS_DIR:-/runs}
data=${DATA_DIR:-/data}
case " $* " in
  *" --help "* | *" -h "*) ;;
  *)
    for dir in "$runs" "$data"; do
      if [ ! -w "$dir" ] && { [ "$dir" = "$runs" ] || [ -z "$(ls -A "$dir" 2>/dev/null)" ]; }; then
        echo "error: $dir is not writable by this container's user (uid $(id -u); the folder belongs to uid" \
             "$(stat -c %u "$dir")): Docker creates a missing mounted folder as root. Create the folders and run as" \
             "yourself: mkdir -p data runs && docker run --user \"\$(id -u):\$(id -g)\" -v \"\$PWD/data:/data\"" \
             "-v \"\$PWD/runs:/runs\" ..." >&2
        exit 2
      fi
    done
    ;;
esac
exec "${PYTHON:-python}" -m deep_nets.train --data_dir="$data" --out_dir="$runs" "$@"
