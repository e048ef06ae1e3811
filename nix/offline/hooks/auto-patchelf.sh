# shellcheck shell=bash
# What nixpkgs' autoPatchelfHook guarantees, checked: every shared library an ELF file of
# the output needs is found in the output, in the lib/ of a build input, or in the C
# library (glibc's, or musl's libc.so for rust-std of musl targets; the real hook takes
# them from stdenv's libc). The real hook then rewrites the
# interpreter and RPATH to the store; here the binaries keep the host's loader.
autoPatchelfCheck() {
  local libDirs=() pkg file needed found dir
  for pkg in $out ${buildInputs:-} ${depsHostHost:-} ${propagatedBuildInputs:-}; do
    [ -d "$pkg/lib" ] && libDirs+=("$pkg/lib")
  done
  while IFS= read -r -d '' file; do
    isELF "$file" || continue
    while read -r needed; do
      case "$needed" in
        libc.so | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libutil.so.* | ld-linux*) continue ;;
      esac
      found=""
      for dir in "${libDirs[@]}" "$(dirname "$file")"; do
        if [ -e "$dir/$needed" ] || find "$dir" -maxdepth 3 -name "$needed" -print -quit 2>/dev/null | grep -q .; then
          found=1
          break
        fi
      done
      if [ -z "$found" ]; then
        echo "auto-patchelf: could not satisfy dependency $needed wanted by $file" >&2
        return 1
      fi
    done < <(@readelf@ -d "$file" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  done < <(find "$out" -type f -print0)
}
postFixupHooks+=(autoPatchelfCheck)
