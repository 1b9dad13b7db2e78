#!/usr/bin/env bash
# The shell completion of `booking`: what it offers, in bash and in zsh, and that its commands
# and options are exactly those of the CLI's own --help (so the two cannot drift apart).
#   completion_test.sh BOOKING_BINARY COMPLETION_FILE
set -euo pipefail
booking="$1"
script="$2"
failures=0
check() {  # what, expected, got
  if [ "$2" != "$3" ]; then
    echo "FAILED: $1: expected [$2], got [$3]" >&2
    failures=$((failures + 1))
  fi
}

# shellcheck source=/dev/null
source "$script"
complete_line() {  # the words of a command line; the last one is being completed
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMPREPLY=()
  _booking
  printf '%s\n' "${COMPREPLY[@]}" | sort | xargs
}

# Subcommands and options as the CLI itself lists them in --help.
subcommands() {
  "$booking" "$@" --help | awk '/^Subcommands:/ {on = 1; next} /^[^ ]/ {on = 0}
    on && NF {print $1}' | sort | xargs
}
words_only() { tr ' ' '\n' | grep -v '^-' | sort | xargs; }  # drops the options
options_of() {
  "$booking" "$@" --help | awk '/^Options:/ {on = 1; next} /^[A-Z]/ {on = 0}
    on && match($0, /--[a-z][a-z-]*/) {print substr($0, RSTART, RLENGTH)}' | sort | xargs
}

check "commands" "$(subcommands)" "$(complete_line booking "" | words_only)"
check "event subcommands" "$(subcommands event)" "$(complete_line booking event "" | words_only)"
for sub in import search; do
  check "event $sub options" "$(options_of event "$sub")" "$(complete_line booking event "$sub" -)"
done
check "token subcommands" "$(subcommands token)" "$(complete_line booking token "" | words_only)"
check "token create options" "$(options_of token create)" "$(complete_line booking token create -)"
check "--role values" "admin sales" "$(complete_line booking token create --role "")"
for cmd in book bookings confirm show cancel expire demo report; do
  check "$cmd options" "$(options_of "$cmd")" "$(complete_line booking "$cmd" -)"
done
check "prefix" "event expire export" "$(complete_line booking e)"
check "--lock values" "file: memory redis://" "$(complete_line booking --lock "")"
check "after global options" "create" "$(complete_line booking --db x.db --json event cr)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
touch "$tmp/events.jsonl"
check "files for import" "$tmp/events.jsonl" "$(complete_line booking event import "$tmp/ev")"

if command -v zsh >/dev/null; then
  got=$(zsh -fc '
    autoload -U +X compinit && compinit -u -D
    autoload -U +X bashcompinit && bashcompinit
    source "$1"
    setopt ksharrays
    COMP_WORDS=(booking event im); COMP_CWORD=2; COMPREPLY=()
    _booking
    print -r -- "${COMPREPLY[@]}"' zsh "$script")
  # zsh'"'"'s compgen emulation leaves matching the prefix to zsh itself: all of the
  # subcommands of `event` are offered here, and none of the top-level commands.
  check "zsh: event subcommands" "$(subcommands event) --help" "$got"
else
  echo "FAILED: zsh is not installed (cmake/deps.sh installs it)" >&2
  failures=$((failures + 1))
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures completion checks failed" >&2
  exit 1
fi
echo "completion: all checks passed"
