# Completion for the `booking` CLI, for bash and for zsh (through bashcompinit).
#   bash: installed as share/bash-completion/completions/booking, or `source` this file.
#   zsh:  autoload -U +X bashcompinit && bashcompinit && source /path/to/booking.bash
# tests/cli/completion_test.sh checks the commands and options here against `booking --help`.

_booking() {
  local cur prev
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD - 1]}"
  local globals="--db --lock --json --hold-ttl --help --version"
  local commands="event book bookings show confirm cancel expire demo report export changes webhook token"
  # The command and subcommand typed so far, skipping global options and their values.
  local i cmd="" sub=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      --db | --lock | --hold-ttl) ((i++)) ;;
      -*) ;;
      *)
        if [ -z "$cmd" ]; then
          cmd="${COMP_WORDS[i]}"
        elif [ -z "$sub" ]; then
          sub="${COMP_WORDS[i]}"
        fi
        ;;
    esac
  done
  case "$prev" in
    --db | -o | --output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "csv jsonl" -- "$cur")); return ;;
    --lock) COMPREPLY=($(compgen -W "memory file: redis://" -- "$cur")); return ;;
    --hold-ttl | --batch | --limit | --offset | --user | --idempotency-key | --method | \
      --reference | --event | --cursor | --if-version | --after) COMPREPLY=(); return ;;
    --status) COMPREPLY=($(compgen -W "HELD CONFIRMED CANCELLED EXPIRED" -- "$cur")); return ;;
    --role) COMPREPLY=($(compgen -W "admin sales" -- "$cur")); return ;;
  esac
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "$commands $globals" -- "$cur"))
    return
  fi
  local options=""
  case "$cmd" in
    event)
      if [ -z "$sub" ]; then
        COMPREPLY=($(compgen -W "cancel close create import reopen search show update --help" -- "$cur"))
        return
      fi
      case "$sub" in
        create) options="--help" ;;
        import) options="--strict --skip-existing --batch --help" ;;
        search) options="--limit --offset --help" ;;
        show | close | reopen | cancel) options="--help" ;;
        update) options="--if-version --help" ;;
      esac
      if [[ "$cur" != -* && ("$sub" == create || "$sub" == import || "$sub" == update) ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
      fi
      ;;
    webhook)
      if [ -z "$sub" ]; then
        COMPREPLY=($(compgen -W "list resume --help" -- "$cur"))
        return
      fi
      options="--help"
      ;;
    token)
      if [ -z "$sub" ]; then
        COMPREPLY=($(compgen -W "create list revoke --help" -- "$cur"))
        return
      fi
      case "$sub" in
        create) options="--role --help" ;;
        list | revoke) options="--help" ;;
      esac
      ;;
    book) options="--user --idempotency-key --help" ;;
    bookings) options="--event --status --user --limit --cursor --help" ;;
    confirm) options="--method --reference --help" ;;
    show | cancel | expire | demo | report) options="--help" ;;
    export) options="--format --output -o --help" ;;
    changes) options="--after --limit --follow --help" ;;
  esac
  COMPREPLY=($(compgen -W "$options" -- "$cur"))
}
complete -F _booking booking
