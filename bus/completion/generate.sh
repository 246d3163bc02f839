#!/usr/bin/env bash
# Writes bash completion for slotbus from its own --help text, so the two
# cannot drift apart: the commands from `slotbus --help`, each command's
# options from `slotbus COMMAND --help`; slot and plugin names come from the
# running host when one answers.
#   generate.sh SLOTBUS_BINARY OUTPUT
set -euo pipefail
slotbus=$1
out=$2
mkdir -p "$(dirname "$out")"

commands=$("$slotbus" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$commands" ] || { echo "generate.sh: no commands in slotbus --help" >&2; exit 1; }

{
    echo "# bash completion for slotbus, generated from its --help by bus/completion/generate.sh"
    echo "_slotbus_names() { # what the running host has: slots, plugins or shipped plugins"
    echo '    local address=() field=name args'
    echo '    [[ -n ${_slotbus_address-} ]] && address=(--address "$_slotbus_address")'
    echo '    case $1 in'
    echo '        slots) field=path args=(ls --json) ;;'
    echo '        plugins) args=(plugins --json) ;;'
    echo '        available) args=(plugins available --json) ;;'
    echo '    esac'
    echo '    # Each "FIELD":"VALUE" of the --json answer; a path as a user types it (/ not \\).'
    echo '    slotbus "${address[@]}" "${args[@]}" 2>/dev/null | grep -o "\"$field\":\"[^\"]*\"" |'
    echo '        cut -d'"'"'"'"'"' -f4 | sed '"'"'s|\\\\|/|g'"'"''
    echo "}"
    echo "_slotbus() {"
    echo '    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd="" verb="" i'
    echo '    _slotbus_address=""'
    echo '    for ((i = 1; i < COMP_CWORD; i++)); do'
    echo '        case ${COMP_WORDS[i]} in'
    echo '            -a|--address) _slotbus_address=${COMP_WORDS[i+1]-}; ((i++)) ;;'
    echo '            -*) ;;'
    echo '            *) if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; elif [[ -z $verb ]]; then verb=${COMP_WORDS[i]}; fi ;;'
    echo '        esac'
    echo '    done'
    echo '    if [[ $prev == -a || $prev == --address || $prev == --from || $prev == --to || $prev == --dir ]]; then'
    echo '        COMPREPLY=($(compgen -f -- "$cur")); return'
    echo '    fi'
    echo '    if [[ -z $cmd ]]; then'
    echo "        COMPREPLY=(\$(compgen -W \"$(echo $commands) --address --json --help --version\" -- \"\$cur\")); return"
    echo '    fi'
    echo '    local opts=""'
    echo '    case $cmd in'
    for c in $commands; do
        opts=$("$slotbus" "$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u | tr '\n' ' ')
        echo "        $c) opts=\"$opts\" ;;"
    done
    echo '    esac'
    echo '    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi'
    echo '    case $cmd in'
    echo '        ls|info|send|tail|req|reply) [[ -z $verb ]] && COMPREPLY=($(compgen -W "$(_slotbus_names slots)" -- "$cur")) ;;'
    echo '        logs) [[ -z $verb ]] && COMPREPLY=($(compgen -W "$(_slotbus_names plugins)" -- "$cur")) ;;'
    echo '        plugins)'
    echo '            if [[ -z $verb ]]; then COMPREPLY=($(compgen -W "start stop restart available enable disable" -- "$cur"))'
    echo '            elif [[ $verb == enable ]]; then COMPREPLY=($(compgen -W "$(_slotbus_names available)" -- "$cur"))'
    echo '            elif [[ $verb != available ]]; then COMPREPLY=($(compgen -W "$(_slotbus_names plugins)" -- "$cur")); fi ;;'
    echo '        policy) [[ -z $verb ]] && COMPREPLY=($(compgen -W "explain" -- "$cur")) ;;'
    echo '    esac'
    echo "}"
    echo "complete -F _slotbus slotbus"
} > "$out.tmp"
bash -n "$out.tmp"
mv "$out.tmp" "$out"
