#!/usr/bin/env bash
# The README's main command: build, start slotbusd in the background on its
# default socket, run the seeds' reader and writer against it, show the
# records flowing, then stop what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
bin="$build_dir"

log=$(mktemp -t slotbusd.XXXXXX.log)
echo "==> starting slotbusd in the background (log: $log)"
"$bin/bus/slotbusd" --verbose >"$log.out" 2>"$log" &
started=$!
for _ in $(seq 100); do
    grep -q "ready on" "$log.out" 2>/dev/null && break
    kill -0 "$started" 2>/dev/null || break
    sleep 0.05
done
if grep -q "already running" "$log"; then
    echo "==> $(cat "$log")"
    echo "==> using the host that is already running"
    started=""
else
    cat "$log.out"
fi
cleanup() {
    if [ -n "$started" ]; then
        echo "==> stopping the host (pid $started)"
        kill -TERM "$started" 2>/dev/null || true
        wait "$started" 2>/dev/null || true
    fi
}
trap cleanup EXIT

echo "==> seeds_reader creates \\\\.\\mailslot\\sample_mailslot and waits"
"$bin/samples/seeds/seeds_reader" --count 3 | sed 's/^/    reader | /' &
reader=$!
sleep 0.3
echo "==> seeds_writer writes two records, pauses, writes a third"
"$bin/samples/seeds/seeds_writer" --pause-ms 1000 | sed 's/^/    writer | /'
wait "$reader"
echo "==> host log:"
sed 's/^/    /' "$log" 2>/dev/null || true
if [ -n "$started" ]; then
    echo "==> done; the host stops now. To keep one running: $bin/bus/slotbusd &  (stop it with: kill %1)"
fi
