#!/usr/bin/env bash
# The README's main command: build, start slotbusd in the background with the
# shipped plugins (journal, metrics, web), and show it working through the CLI
# while the seeds' writer/reader and the orders publisher/subscriber run.
# It uses a socket of its own, so a host you already run is left alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
bin="$build_dir"
slotbus="$bin/bus/slotbus"

run_dir=$(mktemp -d -t slotbus-demo.XXXXXX)
export SLOTBUS_ADDRESS="$run_dir/bus.sock" # the CLI and the samples find the host here
export XDG_STATE_HOME="$run_dir/state"     # where the journal plugin writes
show() { # runs a command, shown as a user would type it
    local shown=("$@")
    shown[0]=$(basename "$1")
    echo; echo "\$ ${shown[*]}"
    "$@" 2>&1 | sed 's/^/    /'
}

echo "==> starting slotbusd in the background with the plugins in $bin/plugins.d"
"$bin/bus/slotbusd" --daemon --socket "$SLOTBUS_ADDRESS" --plugins-dir "$bin/plugins.d"
trap '"$slotbus" stop >/dev/null 2>&1 || true' EXIT
for _ in $(seq 100); do # the plugins are up once their slots are
    "$slotbus" ls slotbus/journal --json | grep -q journal && break
    sleep 0.05
done
show "$slotbus" plugins
show "$slotbus" ls

echo
echo "\$ slotbus tail 'events/**' --count 4 &     # prints what the samples publish"
"$slotbus" tail 'events/**' --count 4 2>/dev/null | sed 's/^/    tail | /' &
tail_pid=$!
for _ in $(seq 100); do
    "$slotbus" ls slotbus/cli --json | grep -q tail && break
    sleep 0.05
done

echo
echo "==> the orders pair: a subscriber by C++ type, a coroutine publisher"
"$bin/samples/orders/orders_subscriber" --count 3 | sed 's/^/    subscriber | /' &
subscriber=$!
for _ in $(seq 100); do
    "$slotbus" ls --json | grep -q 'events\\\\orders\\\\\*\*' && break
    sleep 0.05
done
"$bin/samples/orders/orders_publisher" --count 3 | sed 's/^/    publisher  | /'
wait "$subscriber"

echo
echo "==> the seeds' reader and writer (the Windows mailslot documents' programs)"
"$bin/samples/seeds/seeds_reader" --count 3 | sed 's/^/    reader | /' &
reader=$!
for _ in $(seq 100); do
    "$slotbus" ls sample_mailslot --json | grep -q sample_mailslot && break
    sleep 0.05
done
"$bin/samples/seeds/seeds_writer" --pause-ms 300 | sed 's/^/    writer | /'
wait "$reader"

show "$slotbus" send events/demo '{"hello": "from the CLI"}' --type demo.greeting
wait "$tail_pid" || true
show "$slotbus" stats
show "$slotbus" tail 'slotbus/metrics/**' --count 1
echo
echo "==> the web view (open http://127.0.0.1:8233/ in a browser while a host runs); its /metrics:"
if curl -sf http://127.0.0.1:8233/metrics >"$run_dir/metrics.txt" 2>/dev/null; then
    grep -E '^slotbus_(writes_total|deliveries_total|slots|connections|plugin_up)' "$run_dir/metrics.txt" | sed 's/^/    /'
else
    echo "    (port 8233 is taken here, by another host's web view: see the log below)"
fi
echo
echo "==> the journal plugin kept every event on events/**:"
sed 's/^/    /' "$XDG_STATE_HOME/slotbus/journal/journal.jsonl"
show "$slotbus" stop
echo
echo "==> the host's log ($run_dir/slotbusd.log):"
sed 's/^/    /' "$run_dir/slotbusd.log"
