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
quoted() { # the words as a shell takes them back: a word with spaces or quotes in single quotes
    local out=() word
    for word in "$@"; do
        if [[ $word =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
            out+=("$word")
        else
            out+=("'${word//\'/\'\\\'\'}'")
        fi
    done
    echo "${out[*]}"
}
wait_for() { # wait_for PATTERN ARGS...: until `slotbus ARGS` prints PATTERN (5 s at most)
    local pattern=$1 out
    shift
    for _ in $(seq 100); do
        out=$("$slotbus" "$@" 2>/dev/null) || true
        grep -q -- "$pattern" <<< "$out" && return
        sleep 0.05
    done
}
show() { # runs a command, shown as a user would type it (paste-able: the CLI is `slotbus`)
    local shown=("$@")
    shown[0]=$(basename "$1")
    echo; echo "\$ $(quoted "${shown[@]}")"
    "$@" 2>&1 | sed 's/^/    /'
}

echo "==> starting slotbusd in the background with the plugins in $bin/plugins.d"
"$bin/bus/slotbusd" --daemon --socket "$SLOTBUS_ADDRESS" --plugins-dir "$bin/plugins.d"
trap '"$slotbus" stop >/dev/null 2>&1 || true; rm -rf "$run_dir"' EXIT
wait_for journal ls slotbus/journal --json  # the plugins are up once their slots are
show "$slotbus" plugins
show "$slotbus" ls

# The background programs write to files, shown once each step is over, so
# the transcript reads in order even when it is piped or saved.
echo
echo "\$ slotbus tail 'events/**' --count 4 &     # what the samples publish (shown below)"
"$slotbus" tail 'events/**' --count 4 > "$run_dir/tail.out" 2>&1 &
tail_pid=$!
wait_for tail ls slotbus/cli --json

echo
echo "==> the orders pair: a subscriber by C++ type, a coroutine publisher"
echo "\$ orders_subscriber --count 3 &"
"$bin/samples/orders/orders_subscriber" --count 3 > "$run_dir/subscriber.out" 2>&1 &
subscriber=$!
wait_for 'events\\\\orders\\\\\*\*' ls --json
echo
echo "Who receives events/orders/eu: every slot subscribed to a pattern it matches —"
echo "the subscriber's billing/inbox (events/orders/**), the journal plugin's slot and"
echo "the tail's (events/**). \`slotbus ls\` shows them:"
show "$slotbus" ls
echo
echo "\$ orders_publisher --count 3"
"$bin/samples/orders/orders_publisher" --count 3 2>&1 | sed 's/^/    /'
wait "$subscriber"
echo
echo "the subscriber printed:"
sed 's/^/    /' "$run_dir/subscriber.out"

echo
echo "==> the seeds' reader and writer (the Windows mailslot documents' programs)"
echo "\$ seeds_reader --count 3 &"
"$bin/samples/seeds/seeds_reader" --count 3 > "$run_dir/reader.out" 2>&1 &
reader=$!
wait_for sample_mailslot ls sample_mailslot --json
echo "\$ seeds_writer --pause-ms 300"
"$bin/samples/seeds/seeds_writer" --pause-ms 300 2>&1 | sed 's/^/    /'
wait "$reader"
echo
echo "the reader printed:"
sed 's/^/    /' "$run_dir/reader.out"

show "$slotbus" send events/demo '{"hello": "from the CLI"}' --type demo.greeting
wait "$tail_pid" || true
echo
echo "the tail printed (the three orders and the CLI's greeting):"
sed 's/^/    /' "$run_dir/tail.out"
show "$slotbus" stats
show "$slotbus" tail 'slotbus/metrics/**' --count 1
echo
echo "==> the web view (open http://127.0.0.1:8233/ in a browser while a host runs); its /metrics:"
if curl -sf http://127.0.0.1:8233/metrics >"$run_dir/metrics.txt" 2>/dev/null; then
    { grep -E '^slotbus_(writes_total|deliveries_total|slots|connections|plugin_up)' "$run_dir/metrics.txt" || true; } | sed 's/^/    /'
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
