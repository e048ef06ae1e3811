# shellcheck shell=bash
# The substitute stdenv's `setup`, sourced by every mkDerivation builder and by
# `nix develop` (Nix's get-env.sh sources "$stdenv/setup", then dumps the environment).
#
# It models what crane's setup hooks and our derivations rely on in nixpkgs' stdenv:
# - PATH holds only the bin/ directories of the stdenv's own packages and of the
#   derivation's inputs (and what they propagate through nix-support/propagated-*), so a
#   missing nativeBuildInputs/nativeCheckInputs entry fails as in a sandbox;
# - nativeCheckInputs join only when doCheck is set; buildInputs join PATH only without
#   strictDeps;
# - every input's nix-support/setup-hook is sourced;
# - phases unpack, patch, configure, build, check, install, fixup, installCheck, each
#   overridable by a variable, with `runHook`: the variable of the same name first, then
#   every entry of the <name>Hooks array (function names or shell snippets);
# - fixup strips debug sections with the stdenv's binutils (stdenv, not stdenvNoCC).
# Written for this project; it is not nixpkgs' setup.sh and does not aim to be complete.

set -o pipefail
shopt -s nullglob

: "${outputs:=out}"
export NIX_BUILD_CORES="${NIX_BUILD_CORES:-1}"
[ "$NIX_BUILD_CORES" = 0 ] && NIX_BUILD_CORES=$(nproc)
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}"
export LC_ALL=C.UTF-8 TZ=UTC

# ---- hooks -------------------------------------------------------------------------------
_evalHook() {
  if declare -F "$1" >/dev/null && [ "$#" -eq 1 ]; then
    "$1"
  else
    eval "$1"
  fi
}

runHook() {
  local name="$1"
  local implicit="${!name:-}"
  if [ -n "$implicit" ]; then
    eval "$implicit"
  fi
  local array="${name}Hooks[@]"
  local hook
  for hook in "${!array}"; do
    _evalHook "$hook"
  done
  return 0
}

# ---- inputs ------------------------------------------------------------------------------
declare -A _seenInputs=()
_pathDirs=()

_addInput() {
  local pkg="$1" onPath="$2"
  [ -n "$pkg" ] || return 0
  local key="$pkg:$onPath"
  [ -z "${_seenInputs[$key]:-}" ] || return 0
  _seenInputs[$key]=1
  if [ ! -e "$pkg" ]; then
    echo "setup: input $pkg does not exist" >&2
    return 1
  fi
  if [ "$onPath" = 1 ] && [ -d "$pkg/bin" ]; then
    _pathDirs+=("$pkg/bin")
  fi
  local file dep
  for file in propagated-build-inputs propagated-native-build-inputs propagated-host-host-deps; do
    if [ -f "$pkg/nix-support/$file" ]; then
      for dep in $(< "$pkg/nix-support/$file"); do
        _addInput "$dep" "$onPath"
      done
    fi
  done
  if [ -f "$pkg/nix-support/setup-hook" ] && [ -z "${_seenInputs[$pkg:hook]:-}" ]; then
    _seenInputs[$pkg:hook]=1
    _setupHooks+=("$pkg/nix-support/setup-hook")
  fi
}
_setupHooks=()

_hostOnPath=1
[ -n "${strictDeps:-}" ] && _hostOnPath=0

# shellcheck disable=SC2154
for _pkg in $stdenvInitialPath; do _addInput "$_pkg" 1; done
for _pkg in ${nativeBuildInputs:-} ${propagatedNativeBuildInputs:-} ${depsBuildBuild:-}; do
  _addInput "$_pkg" 1
done
if [ -n "${doCheck:-}" ]; then
  for _pkg in ${nativeCheckInputs:-}; do _addInput "$_pkg" 1; done
  for _pkg in ${checkInputs:-}; do _addInput "$_pkg" "$_hostOnPath"; done
fi
if [ -n "${doInstallCheck:-}" ]; then
  for _pkg in ${nativeInstallCheckInputs:-}; do _addInput "$_pkg" 1; done
fi
for _pkg in ${buildInputs:-} ${propagatedBuildInputs:-} ${depsHostHost:-} ${depsHostHostPropagated:-}; do
  _addInput "$_pkg" "$_hostOnPath"
done
unset _pkg

PATH="$(IFS=:; echo "${_pathDirs[*]}")"
export PATH

# Setup hooks run once PATH is complete, in the order their packages were found.
for _hook in "${_setupHooks[@]}"; do
  # shellcheck disable=SC1090
  source "$_hook"
done
unset _hook

# ---- helpers nixpkgs' stdenv provides ------------------------------------------------------
isELF() {
  local magic
  magic=$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' \n') || return 1
  [ "$magic" = '177ELF' ]
}

isScript() {
  [ "$(head -c 2 "$1" 2>/dev/null)" = '#!' ]
}

substitute() {
  local input="$1" output="$2"
  shift 2
  local content
  content="$(< "$input")"
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --replace | --replace-fail | --replace-warn | --replace-quiet)
        if [ "$1" = --replace-fail ] && [[ "$content" != *"$2"* ]]; then
          echo "substitute: '$2' not found in $input" >&2
          return 1
        fi
        content="${content//"$2"/"$3"}"
        shift 3
        ;;
      --subst-var)
        content="${content//@"$2"@/"${!2}"}"
        shift 2
        ;;
      --subst-var-by)
        content="${content//@"$2"@/"$3"}"
        shift 3
        ;;
      *)
        echo "substitute: unknown argument $1" >&2
        return 1
        ;;
    esac
  done
  printf '%s\n' "$content" > "$output.tmp"
  [ ! -x "$input" ] || chmod +x "$output.tmp"
  mv "$output.tmp" "$output"
}

substituteInPlace() {
  local file="$1"
  shift
  substitute "$file" "$file" "$@"
}

# Every @name@ whose name is a variable of the environment.
substituteAll() {
  local input="$1" output="$2" args=() name
  for name in $(compgen -v); do
    [[ "$name" =~ ^[a-z][a-zA-Z0-9_]*$ ]] || continue
    args+=(--subst-var "$name")
  done
  substitute "$input" "$output" "${args[@]}"
}

patchShebangs() {
  local target file interpreter name rest
  for target in "$@"; do
    while IFS= read -r -d '' file; do
      isScript "$file" || continue
      read -r interpreter rest < <(head -n1 "$file" | cut -c3-)
      case "$interpreter" in
        /nix/store/*) continue ;;
        */env) name="${rest%% *}" ;;
        *) name="$(basename "$interpreter")" ;;
      esac
      local resolved
      if resolved="$(command -v "$name")"; then
        sed -i "1s|^#! *[^ ]*\( .*\)\?|#!$resolved|" "$file"
        [ "${interpreter##*/}" = env ] && [ "$rest" != "$name" ] && sed -i "1s|\$| ${rest#* }|" "$file"
      fi
    done < <(find "$target" -type f -perm -0100 -print0)
  done
}

# ---- phases ------------------------------------------------------------------------------
unpackPhase() {
  runHook preUnpack
  if [ -z "${src:-}" ]; then
    echo "unpackPhase: no src" >&2
    return 1
  fi
  local before after
  before="$(ls -A)"
  if [ -d "$src" ]; then
    local name
    name="$(basename "$src")"
    name="${name#*-}"
    cp -r --preserve=timestamps --no-preserve=ownership "$src" "$name"
    chmod -R u+w "$name"
  else
    tar -xf "$src" --no-same-owner
  fi
  after="$(ls -A)"
  if [ -z "${sourceRoot:-}" ]; then
    sourceRoot="$(comm -13 <(printf '%s\n' "$before" | sort) <(printf '%s\n' "$after" | sort))"
    if [ "$(printf '%s\n' "$sourceRoot" | wc -l)" != 1 ]; then
      echo "unpackPhase: cannot tell the source root among: $sourceRoot" >&2
      return 1
    fi
  fi
  runHook postUnpack
}

patchPhase() {
  runHook prePatch
  local patch
  for patch in ${patches:-}; do
    patch -p1 < "$patch"
  done
  runHook postPatch
}

configurePhase() {
  runHook preConfigure
  runHook postConfigure
}

buildPhase() {
  runHook preBuild
  if [ -f Makefile ] || [ -f makefile ]; then
    make -j"$NIX_BUILD_CORES" ${makeFlags:-}
  fi
  runHook postBuild
}

checkPhase() {
  runHook preCheck
  runHook postCheck
}

installPhase() {
  runHook preInstall
  if [ -f Makefile ] || [ -f makefile ]; then
    make install ${makeFlags:-} PREFIX="$out"
  fi
  runHook postInstall
}

# Debug sections out, as nixpkgs' strip hook does; only where the stdenv has binutils.
_stripDebug() {
  [ -z "${dontStrip:-}" ] || return 0
  command -v strip >/dev/null || return 0
  local output dir file
  for output in $outputs; do
    for dir in bin lib libexec sbin; do
      [ -d "${!output}/$dir" ] || continue
      while IFS= read -r -d '' file; do
        isELF "$file" || continue
        strip --strip-debug "$file" 2>/dev/null || true
      done < <(find "${!output}/$dir" -type f -print0)
    done
  done
}

fixupPhase() {
  local output
  for output in $outputs; do
    [ -e "${!output}" ] && chmod -R u+w "${!output}"
  done
  runHook preFixup
  _stripDebug
  for output in $outputs; do
    [ -d "${!output}/bin" ] && patchShebangs "${!output}/bin"
  done
  if [ -n "${propagatedBuildInputs:-}" ]; then
    mkdir -p "$out/nix-support"
    echo "$propagatedBuildInputs" > "$out/nix-support/propagated-build-inputs"
  fi
  if [ -n "${propagatedNativeBuildInputs:-}" ]; then
    mkdir -p "$out/nix-support"
    echo "$propagatedNativeBuildInputs" > "$out/nix-support/propagated-native-build-inputs"
  fi
  if [ -n "${depsHostHostPropagated:-}" ]; then
    mkdir -p "$out/nix-support"
    echo "$depsHostHostPropagated" > "$out/nix-support/propagated-host-host-deps"
  fi
  if [ -n "${setupHook:-}" ]; then
    mkdir -p "$out/nix-support"
    substituteAll "$setupHook" "$out/nix-support/setup-hook"
  fi
  runHook postFixup
}

installCheckPhase() {
  runHook preInstallCheck
  runHook postInstallCheck
}

genericBuild() {
  if [ -n "${buildCommandPath:-}" ]; then
    # shellcheck disable=SC1090
    source "$buildCommandPath"
    return
  fi
  if [ -n "${buildCommand:-}" ]; then
    eval "$buildCommand"
    return
  fi
  local phaseList="${phases:-unpackPhase patchPhase configurePhase buildPhase checkPhase installPhase fixupPhase installCheckPhase}"
  local phase skip
  for phase in $phaseList; do
    skip=""
    case "$phase" in
      unpackPhase) [ -n "${dontUnpack:-}" ] && skip=1 ;;
      patchPhase) [ -n "${dontPatch:-}" ] && skip=1 ;;
      configurePhase) [ -n "${dontConfigure:-}" ] && skip=1 ;;
      buildPhase) [ -n "${dontBuild:-}" ] && skip=1 ;;
      checkPhase) [ -z "${doCheck:-}" ] && skip=1 ;;
      installPhase) [ -n "${dontInstall:-}" ] && skip=1 ;;
      fixupPhase) [ -n "${dontFixup:-}" ] && skip=1 ;;
      installCheckPhase) [ -z "${doInstallCheck:-}" ] && skip=1 ;;
    esac
    [ -z "$skip" ] || continue
    echo "Running phase: $phase"
    if [ -n "${!phase:-}" ]; then
      eval "${!phase}"
    else
      "$phase"
    fi
    if [ "$phase" = unpackPhase ] && [ -n "${sourceRoot:-}" ]; then
      cd "$sourceRoot"
    fi
  done
}
