# shellcheck shell=bash
# makeWrapper ORIGINAL WRAPPER [--set VAR VALUE] [--prefix VAR SEP VALUE] [--add-flags FLAGS]
makeWrapper() {
  local original="$1" wrapper="$2" flags=""
  shift 2
  mkdir -p "$(dirname "$wrapper")"
  {
    echo "#!$(command -v bash)"
    while [ "$#" -gt 0 ]; do
      case "$1" in
        --set) printf 'export %s=%q\n' "$2" "$3"; shift 3 ;;
        --prefix) printf 'export %s=%q${%s:+%q$%s}\n' "$2" "$4" "$2" "$3" "$2"; shift 4 ;;
        --add-flags) flags="$flags $2"; shift 2 ;;
        *) echo "makeWrapper: unsupported argument $1" >&2; return 1 ;;
      esac
    done
    echo "exec $(printf '%q' "$original")$flags \"\$@\""
  } > "$wrapper"
  chmod +x "$wrapper"
}
wrapProgram() {
  local program="$1" hidden
  shift
  hidden="$(dirname "$program")/.$(basename "$program")-wrapped"
  mv "$program" "$hidden"
  makeWrapper "$hidden" "$program" "$@"
}
